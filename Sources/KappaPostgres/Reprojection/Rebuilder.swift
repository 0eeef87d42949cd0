import Kappa
import Logging
import PostgresNIO
import Synchronization

/// Applies the log to a building version in bulk: large batches (one transaction each, with the
/// partition's checkpoint), and for a ``ProjectionOrdering/perStream`` projection several workers,
/// each on a partition of the streams, fed from one read of the log. Every partition applies the
/// log up to the head as it was when the rebuild started; then the version's checkpoint jumps there
/// and live following takes over.
///
/// Resumable: a partition's checkpoint moves in the transaction of its writes, so a rebuild that is
/// killed goes on from there. Fenced: each batch checks the version's lease in the statement that
/// moves the partition's checkpoint. Memory is bounded by ``ProjectionRuntime/Configuration/rebuildBatchSize``
/// (two batches per worker: one applied, one read ahead).
struct Rebuilder: Sendable {
    let runner: ProjectionRunner
    /// When to analyse the version's tables as the rebuild's workers fill them (all workers count).
    let statistics = TableStatistics()
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
        if row?.rebuildTarget != nil, let reason = try await reasonToStartOver() {
            logger.warning("starting the rebuild over", metadata: ["kappa.reason": "\(reason)"])
            try await restart(lease)
            lease.checkpoint = .start
            return try await run(&lease, progress: progress)
        }
        if let existing = row?.rebuildTarget, let count = row?.rebuildPartitions {
            (target, partitions) = (existing, count)
        } else {
            target = try await core.log.head()
            guard target > lease.checkpoint else { return true }
            partitions =
                runner.projection.ordering == .perStream
                ? max(1, core.configuration.rebuildPartitions, core.configuration.rebuildWorkers) : 1
            let current = lease, unlogged = runner.projection.unloggedWhileBuilding && lease.checkpoint == .start
            try await core.database.withReadModelTransaction { connection in
                var started = false
                for try await _ in try await connection.query(
                    queries.startRebuild(
                        key, owner: current.owner, token: current.token, target: target, partitions: partitions, from: current.checkpoint), logger: logger)
                {
                    started = true
                }
                if !started { throw LeaseLost() }
                if unlogged {
                    try await connection.run(queries.setSentinel(key), logger: logger)
                    for table in try await StableNames.relations(in: id.schema.name, kinds: ["r"], on: connection, queries: queries, logger: logger) {
                        try await connection.run(
                            "ALTER TABLE \(unescaped: id.schema.quoted).\(unescaped: SQLIdentifier.quote(catalogName: table)) SET UNLOGGED", logger: logger)
                    }
                }
            }
        }
        let (done, _) = try await partitionProgress(of: key)
        let counter = ProgressCounter(done: done, partitions: partitions)
        // Counted beside the work, not before it: counting a long log takes a while (65 ms a million
        // events here, 2-3 % of such a rebuild). Progress is reported once the total is known.
        let log = core.log, from = lease.checkpoint
        async let counted: Void = {
            do {
                let total = try await log.countEvents(after: from, through: target)
                counter.counted(total)
                logger.info(
                    "rebuilding in bulk",
                    metadata: [
                        "kappa.target": "\(target)", "kappa.partitions": "\(partitions)", "kappa.events_total": "\(total)",
                        "kappa.events_done": "\(done)", "kappa.resumed": "\(done > 0)",
                    ])
            } catch {
                logger.debug("could not count the events to rebuild", metadata: ["error": "\(String(reflecting: error))"])
            }
        }()
        let current = lease
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await keepLease(current, counter: counter, progress: progress) }
            group.addTask {
                // Work partitions until none is left to claim; then wait for other processes' workers,
                // taking over any partition whose holder's lease expires.
                while !core.isStopping && !Task.isCancelled {
                    try await workPartitions(partitions: partitions, counter: counter)
                    if try await self.partitionProgress(of: key).remaining == 0 { return }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            try await group.next()
            group.cancelAll()
        }
        await counted
        if core.isStopping || Task.isCancelled { return false }
        // Tables loaded UNLOGGED become logged in the transaction that ends the rebuild (no watchdog:
        // that rewrites them), so no checkpoint past the load ever stands on tables a crash would empty.
        try await core.database.withReadModelTransaction(watchdog: false) { connection in
            var finished = false
            for try await _ in try await connection.query(
                queries.finishRebuild(key, owner: current.owner, token: current.token, target: target), logger: logger)
            {
                finished = true
            }
            if !finished { throw LeaseLost() }
            try await connection.run(queries.deletePartitions(key), logger: logger)
            try await connection.run(queries.deleteSentinel(key), logger: logger)
            for table in try await connection.unloggedTables(in: id.schema.name, queries: queries, logger: logger) {
                try await connection.run(
                    "ALTER TABLE \(unescaped: id.schema.quoted).\(unescaped: SQLIdentifier.quote(catalogName: table)) SET LOGGED", logger: logger)
            }
        }
        lease.checkpoint = target
        core.checkpointCommitted(key, at: target)
        progress?(counter.snapshot(id))
        let snapshot = counter.snapshot(id)
        logger.info(
            "bulk rebuild reached its target",
            metadata: [
                "kappa.position": "\(target)", "kappa.events_this_run": "\(snapshot.eventsThisRun)",
                "kappa.events_per_second": "\(Int(snapshot.eventsPerSecond))",
            ])
        return true
    }

    /// Why the version's rebuild in progress cannot go on, if it cannot: a crash or failover during
    /// the rebuild emptied its UNLOGGED tables while the checkpoints survived, or its partitions were
    /// split by a rule before Migrations/projections/0008 (no partition of it could be claimed).
    private func reasonToStartOver() async throws -> String? {
        if try await unloggedDataLost() { return "a server crash or failover emptied this rebuild's UNLOGGED tables" }
        let older = try await core.database.readModelRows(core.queries.partitionsByOlderRule(runner.key), resending: true) {
            try $0.decode(Int64.self)
        }.last
        return (older ?? 0) > 0 ? "its partitions were split by the rule of an earlier Kappa" : nil
    }

    /// Whether this version has UNLOGGED tables whose rebuild marker is gone (a crash or a failover emptied them).
    private func unloggedDataLost() async throws -> Bool {
        let queries = core.queries, id = self.id, key = runner.key, logger = runner.logger
        return try await core.database.withReadModelTransaction { connection in
            guard try await !connection.unloggedTables(in: id.schema.name, queries: queries, logger: logger).isEmpty else { return false }
            var survived: Int64 = 0
            for try await count in try await connection.query(queries.sentinelSurvived(key), logger: logger).decode(Int64.self) {
                survived = count
            }
            return survived == 0
        }
    }

    /// Empties the version's tables and puts it back at the first event, fenced by the lease.
    private func restart(_ lease: Lease) async throws {
        let queries = core.queries, id = self.id, key = runner.key, logger = runner.logger
        try await core.database.withReadModelTransaction { connection in
            var restarted = false
            for try await _ in try await connection.query(queries.restartBuild(key, owner: lease.owner, token: lease.token), logger: logger) {
                restarted = true
            }
            if !restarted { throw LeaseLost() }
            try await connection.run(queries.deletePartitions(key), logger: logger)
            for table in try await StableNames.relations(in: id.schema.name, kinds: ["r"], on: connection, queries: queries, logger: logger) {
                try await connection.run("TRUNCATE \(unescaped: id.schema.quoted).\(unescaped: SQLIdentifier.quote(catalogName: table))", logger: logger)
            }
        }
    }

    /// Claims up to ``ProjectionRuntime/Configuration/rebuildWorkers`` partitions of the version's
    /// current rebuild (by lease, in any process) and applies them from one read of the log
    /// (``PartitionedRead``), then claims again, until none is left to claim. The claims are renewed
    /// while their batches run; a partition lost to another worker (its lease expired) is given up.
    func workPartitions(partitions: Int, counter: ProgressCounter) async throws {
        let key = runner.key, core = self.core, logger = runner.logger
        try await withThrowingTaskGroup(of: Void.self) { outer in
            outer.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: core.configuration.leaseDuration / 3)
                    if Task.isCancelled { return }
                    do {
                        _ = try await core.database.readModelRows(
                            core.queries.renewPartitions(
                                key, owner: core.configuration.owner, milliseconds: core.configuration.leaseMilliseconds)
                        ) { _ in () }
                    } catch {
                        logger.debug("could not renew rebuild partitions", metadata: ["error": "\(String(reflecting: error))"])
                    }
                }
            }
            outer.addTask {
                // Up to `rebuildWorkers` partitions at a time, fed from one read of the log.
                while !core.isStopping && !Task.isCancelled {
                    var claims: [ProjectionQueries.PartitionClaim] = []
                    // All of one rebuild: one started over meanwhile is claimed in the next round.
                    while claims.count < min(partitions, max(1, core.configuration.rebuildWorkers)),
                        let claim = try await claimPartition(of: claims.first?.rebuildID)
                    {
                        logger.debug("claimed a rebuild partition", metadata: ["kappa.partition": "\(claim.partition)", "kappa.token": "\(claim.token)"])
                        claims.append(claim)
                    }
                    if claims.isEmpty { return }
                    try await PartitionedRead(rebuilder: self, claims: claims, counter: counter).run()
                }
            }
            try await outer.next()
            outer.cancelAll()
        }
    }

    /// The first partition of the version's rebuild (of rebuild `rebuildID`, if given) free to claim,
    /// claimed; `nil` when none is left.
    private func claimPartition(of rebuildID: Int64?) async throws -> ProjectionQueries.PartitionClaim? {
        let query = core.queries.claimPartition(
            runner.key, owner: core.configuration.owner, milliseconds: core.configuration.leaseMilliseconds, rebuildID: rebuildID)
        return try await core.database.readModelRows(query) { try ProjectionQueries.PartitionClaim($0) }.last
    }

    /// Lends this process's workers to a rebuild another process coordinates (it holds the version's
    /// lease): called by a runner that could not take the lease. Returns when nothing is left to claim.
    func help() async throws {
        guard let row = try await runner.lifecycle.row(), row.lifecycle == .building, row.rebuildTarget != nil,
            let partitions = row.rebuildPartitions
        else { return }
        let counter = ProgressCounter(done: 0, partitions: partitions)
        try await workPartitions(partitions: partitions, counter: counter)
        if counter.snapshot(id).eventsThisRun > 0 {
            runner.logger.info("helped another process's rebuild", metadata: ["kappa.events_this_run": "\(counter.snapshot(id).eventsThisRun)"])
        }
    }

    /// Events applied by every partition, in every process, and partitions not yet done.
    func partitionProgress(of key: LeaseKey) async throws -> (done: Int, remaining: Int) {
        let row =
            try await core.database.readModelRows(core.queries.rebuildProgress(key), resending: true) { try $0.decode((Int64, Int64).self) }.last ?? (
                Int64(0), Int64(0)
            )
        return (Int(row.0), Int(row.1))
    }

    /// Renews the version's lease while the workers run, and reports progress (counted in every
    /// process, read back each second). Ends when cancelled.
    private func keepLease(_ lease: Lease, counter: ProgressCounter, progress: (@Sendable (RebuildProgress) -> Void)?) async throws {
        var lastRenewal = ContinuousClock.now, lastLog = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            if Task.isCancelled { return }
            if counter.isCounted { progress?(counter.snapshot(id)) }
            if ContinuousClock.now - lastRenewal > min(.seconds(1), core.configuration.leaseDuration / 3) {
                try await lease.renew(state: .rebuilding, core: core)
                counter.reconcile(try await self.partitionProgress(of: runner.key).done)
                lastRenewal = .now
            }
            if ContinuousClock.now - lastLog > .seconds(10) {
                let snapshot = counter.snapshot(id)
                runner.logger.info(
                    "rebuilding",
                    metadata: [
                        "kappa.events_done": "\(snapshot.eventsDone)", "kappa.events_total": "\(snapshot.eventsTotal)",
                        "kappa.events_per_second": "\(Int(snapshot.eventsPerSecond))",
                    ])
                lastLog = .now
            }
        }
    }
}

/// Counts a rebuild's progress: this process's workers, and every process's committed total.
final class ProgressCounter: Sendable {
    private let state: Mutex<(local: Int, committed: Int, total: Int?)>
    private let initial: Int
    let partitions: Int
    let started = ContinuousClock.now

    init(done: Int, partitions: Int) {
        self.state = Mutex((done, done, nil))
        self.initial = done
        self.partitions = partitions
    }

    /// The events the rebuild covers, once counted.
    func counted(_ total: Int) { state.withLock { $0.total = total } }

    var isCounted: Bool { state.withLock { $0.total != nil } }

    /// Events this process applied.
    func add(_ count: Int) { state.withLock { $0.local += count } }

    /// Events every process has committed, read back from the partitions.
    func reconcile(_ committed: Int) { state.withLock { $0.committed = max($0.committed, committed) } }

    func snapshot(_ id: ProjectionID) -> RebuildProgress {
        let (local, committed, total) = state.withLock { ($0.local, $0.committed, $0.total) }
        let done = max(local, committed)
        return RebuildProgress(
            projection: id.name, version: id.version, eventsDone: done, eventsTotal: total ?? done,
            eventsThisRun: local - initial, elapsed: ContinuousClock.now - started, partitions: partitions)
    }
}
