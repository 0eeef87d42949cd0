import Kappa
import Logging
import PostgresNIO

/// One claimed partition of a bulk rebuild: applies the partition's share of each page the
/// process's ``PartitionedRead`` hands it, in one transaction a page (pieces, around a poison event)
/// that also moves the partition's checkpoint, fenced by the partition's lease. The checkpoint is
/// the log position of the last event applied: a partition's events arrive in log order.
struct RebuildWorker: Sendable {
    let rebuilder: Rebuilder
    let partition: Int
    /// The partition lease's fencing token, and the rebuild it belongs to.
    let token: Int64
    let rebuildID: Int64
    let counter: ProgressCounter

    var core: RuntimeCore { rebuilder.core }
    var runner: ProjectionRunner { rebuilder.runner }

    init(rebuilder: Rebuilder, claim: ProjectionQueries.PartitionClaim, counter: ProgressCounter) {
        self.rebuilder = rebuilder
        self.partition = claim.partition
        self.token = claim.token
        self.rebuildID = claim.rebuildID
        self.counter = counter
    }

    /// Applies `events` (this partition's, in log order) after its checkpoint `start`, and with `done`
    /// marks the partition finished. Transient faults are retried from what the database has committed.
    /// - Returns: The partition's checkpoint after them; one before `start` when the database
    ///   lost commits this worker had seen succeed (asynchronous commits, a crash or failover), so that
    ///   the read goes back there; `nil` when the partition is no longer this worker's (its lease was
    ///   taken over, or the rebuild reset or dropped).
    func apply(_ events: [RecordedEvent], after start: LogPosition, done: Bool) async throws -> LogPosition? {
        var backoff = Backoff(initial: core.configuration.initialBackoff, maximum: core.configuration.maximumBackoff)
        var (checkpoint, pending) = (start, events)
        while true {
            try Task.checkCancellation()
            if core.isStopping { return nil } // given up: its lease runs out, and the rebuild goes on from its checkpoint
            let committed: LogPosition?
            do {
                if pending.isEmpty {
                    if done { try await commit([], from: checkpoint, through: checkpoint, done: true) }
                    return checkpoint
                }
                try await applyIsolatingPoison(pending, from: checkpoint)
                counter.add(pending.count)
                if rebuilder.statistics.applied(pending.count) { await runner.refreshStatistics() }
                checkpoint = pending[pending.count - 1].position
                pending = []
                continue
            } catch  where isTransient(error) {
                runner.logger.debug("rebuild batch failed; retrying", metadata: ["error": "\(String(reflecting: error))", "kappa.partition": "\(partition)"])
                try await Task.sleep(for: backoff.next())
                // The commit may have happened before the fault: go on from what the database has.
                committed = try await owned(committedCheckpoint)
            } catch is LeaseLost {
                let at = checkpoint
                committed = try await owned { try await movedCheckpoint(from: at) }
            }
            guard let committed else { return nil }
            // Behind where these events began: earlier events this worker applied were lost with
            // their commits; they are read again.
            if committed < start { return committed }
            (checkpoint, pending) = (committed, pending.filter { $0.position > committed })
        }
    }

    /// What `body` returns, or `nil` when it finds the partition no longer this worker's.
    private func owned(_ body: () async throws -> LogPosition) async throws -> LogPosition? {
        do {
            return try await body()
        } catch is LeaseLost {
            runner.logger.info("gave up a rebuild partition another worker took over", metadata: ["kappa.partition": "\(partition)"])
            return nil
        }
    }

    /// After a fenced move found the checkpoint elsewhere than at `checkpoint`: where it is. A commit
    /// whose reply was lost went through after all (its batch applied once), or ones that the server
    /// lost in a crash did not (asynchronous commits): go on from there, reading again if it is
    /// behind. ``LeaseLost`` when the checkpoint did not move (the lease or the rebuild is gone).
    private func movedCheckpoint(from checkpoint: LogPosition) async throws -> LogPosition {
        let committed = try await committedCheckpoint()
        if committed == checkpoint { throw LeaseLost() }
        return committed
    }

    /// This partition's checkpoint as committed; ``LeaseLost`` when the partition is no longer this worker's.
    private func committedCheckpoint() async throws -> LogPosition {
        let row = try await core.database.readModelRows(
            core.queries.partitionCheckpoint(runner.key, partition: partition, rebuildID: rebuildID), resending: true
        ) {
            try $0.decode((Int64, Int64, String?, Int64).self)
        }.last
        guard let (transaction, position, owner, token) = row, owner == core.configuration.owner, token == self.token else { throw LeaseLost() }
        return LogPosition(transactionID: UInt64(transaction), globalPosition: position)
    }

    /// Applies a page that starts after `start`; when the handler rejects it, finds the poison event
    /// and deals with it by the projection's policy (``PoisonIsolation``).
    private func applyIsolatingPoison(_ events: [RecordedEvent], from start: LogPosition) async throws {
        var checkpoint = start
        _ = try await PoisonIsolation.apply(
            events, retryingAlone: false,
            apply: { events, _ in
                let last = events[events.count - 1].position
                try await commit(events, from: checkpoint, through: last, done: false)
                checkpoint = last
            },
            isDropped: { try await runner.lifecycle.row()?.lifecycle == .dropped },
            poison: { event, error in
                try await poison(event, from: checkpoint, error) // throws Rebuilder.Stopped to stop
                checkpoint = event.position
                return false
            })
    }

    /// One transaction: the handler's writes, then the partition's fenced checkpoint, moved from
    /// `start` (a lost lease, or a checkpoint no longer at `start`, rolls both back).
    private func commit(_ events: [RecordedEvent], from start: LogPosition, through position: LogPosition, done: Bool) async throws {
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
    private func fence(on connection: PostgresConnection, from start: LogPosition, to position: LogPosition?, covered: Int, done: Bool)
        async throws
    {
        var moved = false
        for try await _ in try await connection.query(advance(from: start, to: position, covered: covered, done: done), logger: runner.logger) {
            moved = true
        }
        if !moved { throw LeaseLost() }
    }

    /// The fenced move of the partition's checkpoint from `start` (see ``fence(on:from:to:covered:done:)``).
    private func advance(from start: LogPosition, to position: LogPosition?, covered: Int, done: Bool) -> PostgresQuery {
        core.queries.advancePartition(
            runner.key, partition: partition, rebuildID: rebuildID, owner: core.configuration.owner, token: token, from: start, to: position,
            covered: covered, done: done, milliseconds: core.configuration.leaseMilliseconds,
            asynchronousCommit: !core.configuration.synchronousReadModelCommits)
    }

    private func poison(_ event: RecordedEvent, from start: LogPosition, _ error: any Error) async throws {
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
                try await fence(on: connection, from: start, to: event.position, covered: 0, done: false)
                try await connection.run(queries.recordDeadLetter(id, event: event, error: message), logger: eventLogger)
            }
            logger.error("event moved to the dead-letter table", metadata: ["error": "\(message)"])
        }
    }
}
