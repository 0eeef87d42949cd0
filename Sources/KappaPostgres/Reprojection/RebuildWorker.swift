import Kappa
import Logging
import PostgresNIO

/// One claimed partition of a bulk rebuild: reads its streams' events up to the target in large pages
/// (the next page read while this one is applied) and applies each page in one transaction that also
/// moves the partition's checkpoint, fenced by the partition's lease. With several partitions, each is
/// a range of stream hashes (``StreamHashRange``) read in the order (hash, log position); a rebuild in
/// one partition reads the log in its order.
struct RebuildWorker: Sendable {
    let rebuilder: Rebuilder
    let partition: Int
    /// The partition lease's fencing token, and the rebuild it belongs to.
    let token: Int64
    let rebuildID: Int64
    let partitions: Int
    /// The version's checkpoint when the rebuild started, and the head then.
    let start: LogPosition
    let target: LogPosition
    let counter: ProgressCounter

    var core: RuntimeCore { rebuilder.core }
    var runner: ProjectionRunner { rebuilder.runner }

    func run(from claimed: PartitionCheckpoint) async throws {
        let batchSize = max(1, core.configuration.rebuildBatchSize)
        var checkpoint = claimed
        var backoff = Backoff(initial: core.configuration.initialBackoff, maximum: core.configuration.maximumBackoff)
        var prefetched: [RecordedEvent]?
        while !core.isStopping && !Task.isCancelled {
            let events: [RecordedEvent]
            do {
                if let page = prefetched {
                    events = page
                    prefetched = nil
                } else {
                    events = try await read(after: checkpoint, limit: batchSize)
                }
                if events.isEmpty {
                    try await commit([], from: checkpoint, through: checkpoint, done: true)
                    return
                }
            } catch  where isTransient(error) {
                try await Task.sleep(for: backoff.next())
                continue
            } catch is LeaseLost {
                checkpoint = try await movedCheckpoint(from: checkpoint)
                prefetched = nil
                continue
            }
            let last = PartitionCheckpoint(after: events[events.count - 1])
            // Read the next page while this one is applied; always await it (see ProjectionRunner).
            async let next = events.count == batchSize ? read(after: last, limit: batchSize) : []
            let outcome: Result<Void, any Error>
            do {
                outcome = .success(try await applyIsolatingPoison(events, from: checkpoint))
            } catch {
                outcome = .failure(error)
            }
            let page = try? await next
            do {
                try outcome.get()
            } catch  where isTransient(error) {
                runner.logger.debug("rebuild batch failed; retrying", metadata: ["error": "\(String(reflecting: error))", "kappa.partition": "\(partition)"])
                try await Task.sleep(for: backoff.next())
                // The commit may have happened before the fault: go on from what the database has.
                checkpoint = try await committedCheckpoint()
                prefetched = nil
                continue
            } catch is LeaseLost {
                checkpoint = try await movedCheckpoint(from: checkpoint)
                if checkpoint == last { counter.add(events.count) } // the batch's own commit, unseen
                prefetched = nil
                continue
            }
            backoff.reset()
            checkpoint = last
            counter.add(events.count)
            if rebuilder.statistics.applied(events.count) { await runner.refreshStatistics() }
            // A short page was the partition's last; after a full one, `nil` (the read failed) reads again.
            prefetched = events.count < batchSize ? [] : page
        }
    }

    /// The next page of this partition after `checkpoint`.
    private func read(after checkpoint: PartitionCheckpoint, limit: Int) async throws -> [RecordedEvent] {
        let log = core.log, start = self.start, target = self.target
        if partitions == 1 {
            return try await core.database.withWatchdog { try await log.readLog(after: checkpoint.position, through: target, limit: limit) }
        }
        let range = StreamHashRange(partition: partition, of: partitions)
        return try await core.database.withWatchdog {
            try await log.readPartition(range, after: checkpoint, from: start, through: target, limit: limit)
        }
    }

    /// After a fenced move found the checkpoint elsewhere than at `checkpoint`: where it is. A commit
    /// whose reply was lost went through after all (its batch applied once), or one that the server
    /// lost in a crash did not (asynchronous commits): go on from there. ``LeaseLost`` when the
    /// checkpoint did not move (the lease or the rebuild is gone).
    private func movedCheckpoint(from checkpoint: PartitionCheckpoint) async throws -> PartitionCheckpoint {
        let committed = try await committedCheckpoint()
        if committed == checkpoint { throw LeaseLost() }
        return committed
    }

    /// This partition's checkpoint as committed; ``LeaseLost`` when the partition is no longer this worker's.
    private func committedCheckpoint() async throws -> PartitionCheckpoint {
        let row = try await core.database.readModelRows(
            core.queries.partitionCheckpoint(runner.key, partition: partition, rebuildID: rebuildID), resending: true
        ) {
            try $0.decode((Int64, Int64, String?, String?, Int64).self)
        }.last
        guard let (transaction, position, stream, owner, token) = row, owner == core.configuration.owner, token == self.token else { throw LeaseLost() }
        return PartitionCheckpoint(stream: stream, position: LogPosition(transactionID: UInt64(transaction), globalPosition: position))
    }

    /// Applies a page that starts after `start`; when the handler rejects it, finds the poison event
    /// and deals with it by the projection's policy (``PoisonIsolation``).
    private func applyIsolatingPoison(_ events: [RecordedEvent], from start: PartitionCheckpoint) async throws {
        var checkpoint = start
        _ = try await PoisonIsolation.apply(
            events, retryingAlone: false,
            apply: { events, _ in
                let last = PartitionCheckpoint(after: events[events.count - 1])
                try await commit(events, from: checkpoint, through: last, done: false)
                checkpoint = last
            },
            isDropped: { try await runner.lifecycle.row()?.lifecycle == .dropped },
            poison: { event, error in
                try await poison(event, from: checkpoint, error) // throws Rebuilder.Stopped to stop
                checkpoint = PartitionCheckpoint(after: event)
                return false
            })
    }

    /// One transaction: the handler's writes, then the partition's fenced checkpoint, moved from
    /// `start` (a lost lease, or a checkpoint no longer at `start`, rolls both back).
    private func commit(_ events: [RecordedEvent], from start: PartitionCheckpoint, through position: PartitionCheckpoint, done: Bool) async throws {
        let relevant = runner.relevant(events), runner = self.runner
        // In one round trip when the runtime has libpq (``ProjectionRuntime/Configuration/pipelineConnectionString``).
        if let pipeline = core.pipeline(for: runner.key),
            let batch = try await runner.prepareBatch(
                relevant, isRebuilding: true,
                fence: core.queries.failing(
                    advance(from: start, to: position, covered: events.count, done: done), name: runner.id.name, version: runner.id.version)),
            try await runner.send(batch, on: pipeline)
        {
            runner.eventsCounter.increment(by: events.count)
            core.pipelinedRebuildBatches.add(1, ordering: .relaxed)
            return
        }
        try await core.database.withReadModelTransaction { connection in
            try await runner.handle(relevant, on: connection, isRebuilding: true)
            // Fenced last: the partition's row is locked only for a moment (see ProjectionRunner).
            try await fence(on: connection, from: start, to: position, covered: events.count, done: done)
        }
        runner.eventsCounter.increment(by: events.count)
    }

    /// Moves the partition's checkpoint from `start` (or, with `nil`, leaves it there) if its lease is
    /// still this worker's and the checkpoint is still at `start`; else throws ``LeaseLost``.
    private func fence(on connection: PostgresConnection, from start: PartitionCheckpoint, to position: PartitionCheckpoint?, covered: Int, done: Bool)
        async throws
    {
        var moved = false
        for try await _ in try await connection.query(advance(from: start, to: position, covered: covered, done: done), logger: runner.logger) {
            moved = true
        }
        if !moved { throw LeaseLost() }
    }

    /// The fenced move of the partition's checkpoint from `start` (see ``fence(on:from:to:covered:done:)``).
    private func advance(from start: PartitionCheckpoint, to position: PartitionCheckpoint?, covered: Int, done: Bool) -> PostgresQuery {
        core.queries.advancePartition(
            runner.key, partition: partition, rebuildID: rebuildID, owner: core.configuration.owner, token: token, from: start, to: position,
            covered: covered, done: done, milliseconds: core.configuration.leaseMilliseconds,
            asynchronousCommit: !core.configuration.synchronousReadModelCommits)
    }

    private func poison(_ event: RecordedEvent, from start: PartitionCheckpoint, _ error: any Error) async throws {
        let id = runner.id, queries = core.queries, partition = self.partition
        let message = ProjectionError(
            .handlerFailed, projection: id.name, version: id.version, eventType: event.eventType,
            position: event.position, message: String(reflecting: error)
        ).description
        var logger = runner.logger
        logger[metadataKey: "kappa.position"] = "\(event.position)"
        logger[metadataKey: "kappa.event_type"] = "\(event.eventType)"
        logger[metadataKey: "kappa.partition"] = "\(partition)"
        let eventLogger = logger
        switch runner.policy {
        case .stop:
            try await core.database.withReadModelTransaction { connection in
                try await fence(on: connection, from: start, to: nil, covered: 0, done: false)
                try await connection.run(queries.markRebuildFailed(id, event: event, error: message), logger: eventLogger)
            }
            logger.error("rebuild stopped on an event the handler rejects", metadata: ["error": "\(message)"])
            throw Rebuilder.Stopped()
        case .deadLetter:
            try await core.database.withReadModelTransaction { connection in
                try await fence(on: connection, from: start, to: PartitionCheckpoint(after: event), covered: 0, done: false)
                try await connection.run(queries.recordDeadLetter(id, event: event, error: message), logger: eventLogger)
            }
            logger.error("event moved to the dead-letter table", metadata: ["error": "\(message)"])
        }
    }
}
