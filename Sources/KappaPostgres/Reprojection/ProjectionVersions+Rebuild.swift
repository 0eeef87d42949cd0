import Foundation
import Kappa
import Logging
import PostgresNIO

extension ProjectionVersions {
    /// Builds `version` of `name` from the log, in bulk, until it has caught up with the head — in
    /// this process, holding the version's lease — then releases it to whichever runtime follows the
    /// version live. The projection (its handler code) must be among this value's `projections`.
    ///
    /// - Parameters:
    ///   - fromScratch: Drop the version's tables and start from the first event. Otherwise a rebuild
    ///     goes on from the version's checkpoint (or from a rebuild that was interrupted).
    ///   - promote: Promote the version once it has caught up.
    ///   - progress: Called a few times a second while the bulk rebuild runs.
    /// - Throws: ``ProjectionError`` — `unknownProjection` (not registered here), `versionBelowActive`,
    ///   `versionIsActive` (rebuilding the serving version from scratch would empty what readers see),
    ///   `rebuildInProgress` (another process holds the version), `handlerFailed` (stopped on a poison event).
    public func rebuild(
        _ name: String, version: Int, fromScratch: Bool = true, promote: Bool = false,
        progress: (@Sendable (RebuildProgress) -> Void)? = nil
    ) async throws {
        _ = try ProjectionID(name: name, version: version) // a bad name never reaches SQL
        guard let projection = projections.first(where: { $0.name == name && $0.version == version }) else {
            throw ProjectionError(
                .unknownProjection, projection: name, version: version,
                message: "is not registered with this program; its handler code must be in the executable that rebuilds it")
        }
        try await migrate()
        let rows = try await versions(of: name)
        let row = rows.first { $0.version == version }
        if let active = rows.first(where: { $0.lifecycle == .active }) {
            if version < active.version {
                throw ProjectionError(
                    .versionBelowActive, projection: name, version: version,
                    message: "is lower than the active version \(active.version); build a new, higher version instead")
            }
            if version == active.version && fromScratch {
                throw ProjectionError(
                    .versionIsActive, projection: name, version: version,
                    message: "is the active version; rebuilding it from scratch would empty what readers see — build a new version")
            }
        }
        if let owner = row?.leaseOwner {
            throw ProjectionError(
                .rebuildInProgress, projection: name, version: version,
                message: "is being run by \(owner) (a rebuild, or a runtime following it); stop that first")
        }
        // A holder of its own: a runner of this process (same owner) must not share the lease's token.
        var configuration = self.core.configuration
        configuration.owner = "\(configuration.owner)-rebuild-\(UUID().uuidString.prefix(8).lowercased())"
        let core = try RuntimeCore(
            log: self.core.log, readModels: self.core.readModels, notifier: nil,
            configuration: configuration, logger: self.core.logger)
        let runner = try ProjectionRunner(projection: projection, core: core)
        try await runner.setUp()
        var mustReset = fromScratch || row?.lifecycle == .dropped
        var backoff = Backoff(initial: core.configuration.initialBackoff, maximum: core.configuration.maximumBackoff)
        let stopped: Bool
        while true {
            // Taken again after a transient fault: still ours (same owner), so the same token.
            let acquired: Lease?
            do {
                // A dropped version may be taken by a rebuild only; the reset brings it back.
                acquired = try await Lease.acquire(.projections, runner.key, core: core, allowDropped: mustReset)
            } catch  where isTransient(error) {
                try await Task.sleep(for: backoff.next())
                continue
            }
            guard var lease = acquired else {
                let holder = try await versions(of: name).first { $0.version == version }?.leaseOwner ?? "another process"
                throw ProjectionError(
                    .rebuildInProgress, projection: name, version: version,
                    message: "is being run by \(holder) (a rebuild, or a runtime following it); stop that first")
            }
            do {
                if mustReset {
                    try await reset(runner, lease: lease)
                    lease.checkpoint = .start
                    mustReset = false
                    core.logger.info(
                        "rebuilding a projection version from scratch",
                        metadata: [
                            "kappa.projection": "\(name)", "kappa.version": "\(version)",
                        ])
                }
                stopped = try await runner.follow(&lease, bell: Doorbell(), untilCaughtUp: true, progress: progress)
                await lease.release(core: core)
                break
            } catch  where isTransient(error) {
                let pause = backoff.next()
                core.logger.warning("rebuild fault; retrying", metadata: ["error": "\(String(reflecting: error))", "kappa.retry_in": "\(pause)"])
                try await Task.sleep(for: pause)
            } catch is LeaseLost {
                throw ProjectionError(
                    .rebuildInProgress, projection: name, version: version,
                    message: "another process took the version's lease during the rebuild")
            } catch {
                await lease.release(core: core)
                throw error
            }
        }
        if stopped, let failed = try await versions(of: name).first(where: { $0.version == version }), failed.state == .failed {
            throw ProjectionError(
                .handlerFailed, projection: name, version: version,
                message: "the rebuild stopped on an event its handler rejects; see the projection's status")
        }
        // The first version of a projection was made active when it caught up.
        if promote, try await activeVersion(of: name) != version { try await self.promote(name, version: version) }
    }

    /// Empties a version: its schema is recreated from `setupSQL` and its checkpoint goes back to the start.
    private func reset(_ runner: ProjectionRunner, lease: Lease) async throws {
        let queries = runner.core.queries, logger = runner.core.logger, id = runner.id, setupSQL = runner.projection.setupSQL
        try await durableTransaction { connection in
            try await connection.run(queries.lockVersions(id.name), logger: logger)
            // Checked again under the lock: a promote may have made it active since.
            let rows = try await Self.rows(id.name, locking: false, on: connection, queries: queries, logger: logger)
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
