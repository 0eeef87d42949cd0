/// Events read forward in batches, as an `AsyncSequence` of non-empty arrays.
///
/// Made by ``EventStore/streamEvents(_:from:batchSize:)``, ``EventStore/logEvents(after:batchSize:)``
/// and ``EventStore/followLog(after:batchSize:pollInterval:)``.
public struct EventBatches: AsyncSequence, Sendable {
    public typealias Element = [RecordedEvent]

    let batchSize: Int
    let follow: Duration?
    /// Fetches the batch after the last event handed out (`nil` before the first).
    let fetch: @Sendable (_ last: RecordedEvent?, _ limit: Int) async throws -> [RecordedEvent]

    init(batchSize: Int, follow: Duration?, fetch: @escaping @Sendable (RecordedEvent?, Int) async throws -> [RecordedEvent]) {
        precondition(batchSize > 0, "batchSize must be positive")
        self.batchSize = batchSize
        self.follow = follow
        self.fetch = fetch
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(batches: self)
    }

    /// Reads one batch per `next()`; a sequence that follows the log sleeps its poll interval between empty reads.
    public struct Iterator: AsyncIteratorProtocol {
        let batches: EventBatches
        var last: RecordedEvent?
        var finished = false

        public mutating func next() async throws -> [RecordedEvent]? {
            while !finished {
                try Task.checkCancellation()
                let batch = try await batches.fetch(last, batches.batchSize)
                if let tail = batch.last {
                    last = tail
                    if batches.follow == nil && batch.count < batches.batchSize { finished = true }
                    return batch
                }
                guard let interval = batches.follow else {
                    finished = true
                    break
                }
                try await Task.sleep(for: interval)
            }
            return nil
        }
    }
}
