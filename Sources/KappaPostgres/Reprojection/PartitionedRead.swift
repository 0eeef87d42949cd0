import Kappa
import Logging

/// The partitions of a bulk rebuild that one process works, fed from one read of the log.
///
/// Pages are read in log order, each up to ``ProjectionRuntime/Configuration/rebuildBatchSize`` events
/// a partition, and split by ``partition(of:count:)``: every worker gets its own streams' events, in log
/// order, and applies them beside the others while the next page is read. The server reads each event
/// once whatever the number of partitions, at the cost of the log's order (a stream-hash index read a
/// partition at a time cost it twice that, its rows lying on a page each). A page waits for every
/// partition's share to be applied before the next is handed out: memory stays at two pages.
///
/// Each partition's checkpoint is the log position of its last event applied; the read starts at the
/// lowest, and a worker skips what its checkpoint has passed. A partition lost to another process (its
/// lease taken over) drops out; the read ends when none is left or the rebuild's target is reached.
struct PartitionedRead: Sendable {
    let rebuilder: Rebuilder
    let claims: [ProjectionQueries.PartitionClaim]
    let counter: ProgressCounter

    var core: RuntimeCore { rebuilder.core }

    /// Which of `count` partitions `stream` belongs to: the same in every process, run and version
    /// (a change would split a rebuild in flight differently; the tests pin it).
    static func partition(of stream: String, count: Int) -> Int {
        guard count > 1 else { return 0 }
        // FNV-1a alone leaves ids that differ in their last byte in the same upper bits: MurmurHash3's
        // finaliser spreads them, and the upper half, scaled to the count, picks the partition.
        var hash = stableHash(stream)
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return Int(((hash >> 32) &* UInt64(count)) >> 32)
    }

    /// Reads and applies until every claimed partition reached the target, or none is left.
    func run() async throws {
        guard let first = claims.first else { return }
        let workers = claims.map { RebuildWorker(rebuilder: rebuilder, claim: $0, counter: counter) }
        let slots = Dictionary(workers.enumerated().map { ($1.partition, $0) }, uniquingKeysWith: { first, _ in first })
        var checkpoints: [LogPosition?] = claims.map(\.checkpoint)
        let count = first.partitions, target = first.target
        let limit = max(1, core.configuration.rebuildBatchSize) * workers.count
        var after = claims.map(\.checkpoint).min() ?? first.start
        var backoff = Backoff(initial: core.configuration.initialBackoff, maximum: core.configuration.maximumBackoff)
        var prefetched: [RecordedEvent]?
        while !core.isStopping && !Task.isCancelled && checkpoints.contains(where: { $0 != nil }) {
            let events: [RecordedEvent]
            do {
                if let page = prefetched {
                    events = page
                    prefetched = nil
                } else {
                    events = try await read(after: after, through: target, limit: limit)
                }
            } catch  where isTransient(error) {
                try await Task.sleep(for: backoff.next())
                continue
            }
            if events.isEmpty {
                let finished = try await applyAll(workers, Array(repeating: [], count: workers.count), after: checkpoints, done: true)
                guard let back = rewind(from: checkpoints, to: finished) else { return }
                (checkpoints, after) = (finished, back)
                continue
            }
            var shares = Array(repeating: [RecordedEvent](), count: workers.count)
            for event in events {
                guard let slot = slots[Self.partition(of: event.streamID.rawValue, count: count)], let checkpoint = checkpoints[slot],
                    event.position > checkpoint
                else { continue }
                shares[slot].append(event)
            }
            let last = events[events.count - 1].position
            // Read the next page while this one is applied; always await it (see ProjectionRunner).
            async let next = events.count == limit ? read(after: last, through: target, limit: limit) : []
            let outcome: Result<[LogPosition?], any Error>
            do {
                outcome = .success(try await applyAll(workers, shares, after: checkpoints, done: false))
            } catch {
                outcome = .failure(error)
            }
            let page = try? await next
            let applied = try outcome.get()
            backoff.reset()
            if let back = rewind(from: checkpoints, to: applied) {
                (checkpoints, after) = (applied, back)
                continue
            }
            checkpoints = applied
            after = last
            // A short page was the last; after a full one, `nil` (the read failed) reads again.
            prefetched = events.count < limit ? [] : page
        }
    }

    /// Where the read goes back to when a partition's checkpoint went back (its commits lost in a
    /// crash or failover of the read models' server): the lowest checkpoint still held. `nil` when
    /// none went back.
    private func rewind(from before: [LogPosition?], to after: [LogPosition?]) -> LogPosition? {
        let wentBack = zip(before, after).contains { old, new in
            guard let old, let new else { return false }
            return new < old
        }
        guard wentBack else { return nil }
        rebuilder.runner.logger.warning("a rebuild partition's commits were lost; reading the log again from its checkpoint")
        return after.compactMap { $0 }.min()
    }

    /// Each partition still held applies its share at once; its new checkpoint, or `nil` once lost.
    private func applyAll(_ workers: [RebuildWorker], _ shares: [[RecordedEvent]], after checkpoints: [LogPosition?], done: Bool) async throws
        -> [LogPosition?]
    {
        try await withThrowingTaskGroup(of: (Int, LogPosition?).self) { group in
            var result = checkpoints
            for (slot, worker) in workers.enumerated() {
                guard let checkpoint = checkpoints[slot], done || !shares[slot].isEmpty else { continue }
                let share = shares[slot]
                group.addTask { (slot, try await worker.apply(share, after: checkpoint, done: done)) }
            }
            for try await (slot, checkpoint) in group { result[slot] = checkpoint }
            return result
        }
    }

    private func read(after position: LogPosition, through target: LogPosition, limit: Int) async throws -> [RecordedEvent] {
        let log = core.log
        let page = try await core.database.withWatchdog { try await log.readLog(after: position, through: target, limit: limit) }
        core.rebuildEventsRead.add(page.count, ordering: .relaxed)
        return page
    }
}
