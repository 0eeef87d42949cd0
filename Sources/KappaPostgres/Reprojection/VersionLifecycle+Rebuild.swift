import Foundation
import Kappa
import Logging
import PostgresNIO

extension VersionLifecycle {
    /// Builds `projection` from the log, in bulk, until it has caught up with the head, holding the
    /// version's lease through the runtime's one lease loop, then releases the lease to whichever
    /// runtime follows the version live. ``ProjectionVersions/rebuild(_:version:fromScratch:promote:progress:)``
    /// checks the version may be rebuilt, then calls this.
    ///
    /// The build holds the lease as a holder of its own (`<owner>-rebuild-<id>`): a runner of this
    /// process, with the same owner, must not share its token. Another holder makes it give up; a
    /// transient fault is retried with backoff; any other fault, or a lost lease, ends it.
    /// - Parameter fromScratch: Drop the version's tables and start from the first event (always so
    ///   for a dropped version); otherwise go on from its checkpoint or an interrupted rebuild.
    /// Returns once the version caught up or stopped on a poison event (its state then says which);
    /// throws `CancellationError` when cancelled first.
    static func rebuild(
        _ projection: any Projection, core versionsCore: RuntimeCore, fromScratch: Bool, progress: (@Sendable (RebuildProgress) -> Void)?
    ) async throws {
        var configuration = versionsCore.configuration
        configuration.owner = "\(configuration.owner)-rebuild-\(UUID().uuidString.prefix(8).lowercased())"
        let core = try RuntimeCore(
            log: versionsCore.log, readModels: versionsCore.readModels, notifier: nil, configuration: configuration, logger: versionsCore.logger)
        let runner = try ProjectionRunner(projection: projection, core: core)
        let id = runner.id
        try await runner.setUp()
        var mustReset = fromScratch
        let followOn = FollowOnDeadline()
        let end = await core.runLeased(
            .projections, runner.key, logger: runner.logger, allowDropped: { mustReset }, whenHeld: { .giveUp }, retrying: isTransient
        ) { lease, bell in
            if mustReset {
                try await reset(runner, lease: lease)
                lease.checkpoint = .start
                mustReset = false
                core.logger.info(
                    "rebuilding a projection version from scratch", metadata: ["kappa.projection": "\(id.name)", "kappa.version": "\(id.version)"])
            }
            // `follow` returns false only when cancelled or stopping: the loop then ends as `.stopped`.
            return try await runner.follow(&lease, bell: bell, untilCaughtUp: true, followOn: followOn, progress: progress)
        }
        versionsCore.rebuildEventsRead.add(core.rebuildEventsRead.load(ordering: .relaxed), ordering: .relaxed)
        switch end {
        case .finished: return
        case .stopped: throw CancellationError()
        case .held:
            let holder = try await runner.lifecycle.row()?.leaseOwner ?? "another process"
            throw ProjectionError(
                .rebuildInProgress, projection: id.name, version: id.version,
                message: "is being run by \(holder) (a rebuild, or a runtime following it); stop that first")
        case .failed(is LeaseLost):
            throw ProjectionError(
                .rebuildInProgress, projection: id.name, version: id.version, message: "another process took the version's lease during the rebuild")
        case .failed(let error): throw error
        }
    }

    /// Empties a version: its schema is recreated from `setupSQL` and its checkpoint goes back to the start.
    private static func reset(_ runner: ProjectionRunner, lease: Lease) async throws {
        let queries = runner.core.queries, logger = runner.core.logger, id = runner.id, setupSQL = runner.projection.setupSQL
        try await ProjectionVersions(core: runner.core, projections: []).durableTransaction { connection in
            try await connection.run(queries.lockVersions(id.name), logger: logger)
            // Checked again under the lock: a promote may have made it active since.
            let rows = try await ProjectionVersions.rows(id.name, locking: false, on: connection, queries: queries, logger: logger)
            if rows.first(where: { $0.version == id.version })?.lifecycle == .active {
                throw ProjectionError(
                    .versionIsActive, projection: id.name, version: id.version,
                    message: "is the active version; rebuilding it from scratch would empty what readers see — build a new version")
            }
            // The schema first (it waits for any batch in flight), then the row: a batch locks its row
            // after its table writes, so the other order could deadlock.
            try await connection.run("DROP SCHEMA IF EXISTS \(unescaped: id.schema.quoted) CASCADE", logger: logger)
            var reset = false
            for try await _ in try await connection.query(queries.resetVersion(id, owner: lease.owner, token: lease.token), logger: logger) {
                reset = true
            }
            if !reset { throw LeaseLost() }
            try await connection.run("CREATE SCHEMA \(unescaped: id.schema.quoted)", logger: logger)
            do {
                try await connection.runScript(setupSQL, in: id.schema, logger: logger)
            } catch {
                throw ProjectionError(.setupFailed, projection: id.name, version: id.version, message: "setupSQL failed: \(String(reflecting: error))")
            }
            try await connection.run("RESET search_path", logger: logger)
            try await connection.run(queries.deleteDeadLetters(id), logger: logger)
            try await connection.run(queries.deletePartitions(LeaseKey(name: id.name, version: id.version)), logger: logger)
        }
    }
}
