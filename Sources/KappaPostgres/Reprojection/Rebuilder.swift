import Kappa
import Logging
import PostgresNIO
import Synchronization

/// Applies the log to a building version in bulk: large batches (one transaction each, with the
/// partition's checkpoint), and for a ``ProjectionOrdering/perStream`` projection several workers,
/// each on a partition of the streams. Every partition applies the log up to the head as it was when
/// the rebuild started; then the version's checkpoint jumps there and live following takes over.
///
/// Resumable: a partition's checkpoint moves in the transaction of its writes, so a rebuild that is
/// killed goes on from there. Fenced: each batch checks the version's lease in the statement that
/// moves the partition's checkpoint. Memory is bounded by ``ProjectionRuntime/Configuration/rebuildBatchSize``
/// (two batches per worker: one applied, one read ahead).
struct Rebuilder: Sendable {
    let runner: ProjectionRunner
    var core: RuntimeCore { runner.core }
    var id: ProjectionID { runner.id }

    /// Stopped before the end because the projection stopped on a poison event.
    struct Stopped: Error {}

    /// Runs the rebuild to its target. Returns `false` when the runtime is stopping before the end.
    /// - Throws: ``LeaseLost``, a transient fault, or ``Stopped``.
    func run(_ lease: inout Lease, progress: (@Sendable (RebuildProgress) -> Void)?) async throws -> Bool {
        let key = runner.key, queries = core.queries, logger = runner.logger, id = self.id
        let row = try await ProjectionVersions(core: core, projections: []).versions(of: id.name).first { $0.version == id.version }
        let target: LogPosition, partitions: Int
        if let existing = row?.rebuildTarget, let count = row?.rebuildPartitions {
            (target, partitions) = (existing, count)
        } else {
            target = try await core.log.head()
            guard target > lease.checkpoint else { return true }
            partitions = runner.projection.ordering == .perStream ? max(1, core.configuration.rebuildWorkers) : 1
            let current = lease, unlogged = runner.projection.unloggedWhileBuilding && lease.checkpoint == .start
            try await core.withReadModelTransaction { connection in
                var started = false
                for try await _ in try await connection.query(queries.startRebuild(
                    key, owner: current.owner, token: current.token, target: target, partitions: partitions, from: current.checkpoint), logger: logger) {
                    started = true
                }
                if !started { throw LeaseLost() }
                if unlogged {
                    for table in try await StableNames.relations(in: id.schema.name, kinds: ["r"], on: connection, queries: queries, logger: logger) {
                        try await connection.run("ALTER TABLE \(unescaped: id.schema.quoted).\(unescaped: SQLIdentifier.quote(catalogName: table)) SET UNLOGGED", logger: logger)
                    }
                }
            }
        }
        var pending: [(partition: Int, checkpoint: LogPosition)] = []
        var done = 0
        for try await (partition, transaction, position, applied, finished) in try await core.readModels.query(
            queries.partitionRows(key), logger: logger).decode(ProjectionQueries.PartitionRow.self) {
            done += Int(applied)
            if !finished { pending.append((Int(partition), LogPosition(transactionID: UInt64(transaction), globalPosition: position))) }
        }
        let total = try await core.log.countEvents(after: lease.checkpoint, through: target)
        let counter = ProgressCounter(done: done, total: total, partitions: partitions)
        logger.info("rebuilding in bulk", metadata: [
            "kappa.target": "\(target)", "kappa.partitions": "\(partitions)", "kappa.events_total": "\(total)",
            "kappa.events_done": "\(done)", "kappa.resumed": "\(done > 0)",
        ])
        let current = lease, work = pending
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await keepLease(current, counter: counter, progress: progress) }
            group.addTask {
                try await withThrowingTaskGroup(of: Void.self) { workers in
                    for (partition, checkpoint) in work {
                        workers.addTask {
                            try await RebuildWorker(rebuilder: self, lease: current, partition: partition, partitions: partitions,
                                                    target: target, counter: counter).run(from: checkpoint)
                        }
                    }
                    try await workers.waitForAll()
                }
            }
            try await group.next()
            group.cancelAll()
        }
        if core.isStopping || Task.isCancelled { return false }
        try await core.withReadModelTransaction { connection in
            var finished = false
            for try await _ in try await connection.query(queries.finishRebuild(key, owner: current.owner, token: current.token, target: target), logger: logger) {
                finished = true
            }
            if !finished { throw LeaseLost() }
            try await connection.run(queries.deletePartitions(key), logger: logger)
        }
        lease.checkpoint = target
        core.checkpointCommitted(key, at: target)
        progress?(counter.snapshot(id))
        let snapshot = counter.snapshot(id)
        logger.info("bulk rebuild reached its target", metadata: [
            "kappa.position": "\(target)", "kappa.events_this_run": "\(snapshot.eventsThisRun)",
            "kappa.events_per_second": "\(Int(snapshot.eventsPerSecond))",
        ])
        return true
    }

    /// Renews the version's lease while the workers run, and reports progress. Ends when cancelled.
    private func keepLease(_ lease: Lease, counter: ProgressCounter, progress: (@Sendable (RebuildProgress) -> Void)?) async throws {
        var lastRenewal = ContinuousClock.now, lastLog = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            if Task.isCancelled { return }
            progress?(counter.snapshot(id))
            if ContinuousClock.now - lastRenewal > core.configuration.leaseDuration / 3 {
                try await lease.renew(state: "rebuilding", core: core)
                lastRenewal = .now
            }
            if ContinuousClock.now - lastLog > .seconds(10) {
                let snapshot = counter.snapshot(id)
                runner.logger.info("rebuilding", metadata: [
                    "kappa.events_done": "\(snapshot.eventsDone)", "kappa.events_total": "\(snapshot.eventsTotal)",
                    "kappa.events_per_second": "\(Int(snapshot.eventsPerSecond))",
                ])
                lastLog = .now
            }
        }
    }
}

/// Counts a rebuild's progress across its workers.
final class ProgressCounter: Sendable {
    private let state: Mutex<Int>
    private let initial: Int
    let total: Int
    let partitions: Int
    let started = ContinuousClock.now

    init(done: Int, total: Int, partitions: Int) {
        self.state = Mutex(done)
        self.initial = done
        self.total = total
        self.partitions = partitions
    }

    func add(_ count: Int) { state.withLock { $0 += count } }

    func snapshot(_ id: ProjectionID) -> RebuildProgress {
        let done = state.withLock { $0 }
        return RebuildProgress(projection: id.name, version: id.version, eventsDone: done, eventsTotal: total,
                               eventsThisRun: done - initial, elapsed: ContinuousClock.now - started, partitions: partitions)
    }
}
