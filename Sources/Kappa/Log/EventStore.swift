/// The log: append-only streams of events in one global order.
///
/// `KappaPostgres.PostgresEventStore` is the production store; ``InMemoryEventStore`` serves unit tests
/// of domain logic. Both give the same guarantees for the calls below.
public protocol EventStore: Sendable {
    /// Appends `events` to `stream` atomically if the stream is at `expectedVersion`.
    ///
    /// Idempotent on event id: appending events whose ids are all already stored, as the same
    /// stream in the same order, writes nothing and returns the original result.
    /// - Throws: ``EventStoreError`` — ``EventStoreError/Code/versionConflict`` when the stream is not at
    ///   the expected version, ``EventStoreError/Code/duplicateEventID`` when only some ids are stored
    ///   or they belong elsewhere. Nothing is written when it throws.
    func append(_ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion) async throws -> AppendResult

    /// Up to `limit` events of `stream` with versions from `version` on, in version order.
    func readStream(_ stream: StreamID, from version: Int64, limit: Int) async throws -> [RecordedEvent]

    /// Up to `limit` events of the whole log after `position`, in the log's global order.
    ///
    /// Never skips: it returns only events of transactions older than every transaction still running,
    /// so an event that commits later can never land before one already returned.
    func readLog(after position: LogPosition, limit: Int) async throws -> [RecordedEvent]
}

extension EventStore {
    /// The events of `stream` from `version` on, in batches of up to `batchSize`, ending at the stream's end.
    public func streamEvents(_ stream: StreamID, from version: Int64 = 1, batchSize: Int = 1_000) -> EventBatches {
        EventBatches(batchSize: batchSize, follow: nil) { last, limit in
            try await readStream(stream, from: last.map { $0.streamVersion + 1 } ?? version, limit: limit)
        }
    }

    /// The whole log after `position`, in batches of up to `batchSize`, ending when it reaches
    /// what is readable now (the head, or the first event whose transaction is still open).
    public func logEvents(after position: LogPosition = .start, batchSize: Int = 1_000) -> EventBatches {
        EventBatches(batchSize: batchSize, follow: nil) { last, limit in
            try await readLog(after: last?.position ?? position, limit: limit)
        }
    }

    /// The whole log after `position`, in batches, never ending: at the head it polls every
    /// `pollInterval` for new events. Ends when the task is cancelled.
    public func followLog(after position: LogPosition = .start, batchSize: Int = 1_000, pollInterval: Duration = .milliseconds(50)) -> EventBatches {
        EventBatches(batchSize: batchSize, follow: pollInterval) { last, limit in
            try await readLog(after: last?.position ?? position, limit: limit)
        }
    }
}
