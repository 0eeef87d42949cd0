import Kappa
import Logging
import PostgresNIO

/// A projection version's way from building to serving, as its runner goes: whether it rebuilds in
/// bulk, the end of its build when it first reaches the log's horizon, and its promotion when that
/// is due. The runner calls it where its ``FollowStateMachine`` says so; promotion itself is the
/// switch the public ``ProjectionVersions`` performs.
struct VersionLifecycle: Sendable {
    let core: RuntimeCore
    let id: ProjectionID
    let indexSQL: String
    let logger: Logger

    /// This version's row, as the read-model database has it now.
    func row() async throws -> ProjectionVersion? {
        try await ProjectionVersions(core: core, projections: []).versions(of: id.name).first { $0.version == id.version }
    }

    /// A building version rebuilds in bulk when a rebuild is under way, or when it is at least
    /// ``ProjectionRuntime/Configuration/rebuildThreshold`` events behind the log.
    func shouldRebuild(_ lease: Lease) async throws -> Bool {
        if try await row()?.rebuildTarget != nil { return true }
        let threshold = max(1, core.configuration.rebuildThreshold)
        return try await core.log.countEvents(after: lease.checkpoint, limit: threshold) >= threshold
    }

    /// A building version reached the head for the first time: its secondary indexes are created,
    /// unlogged tables made logged and statistics gathered, and it becomes `caught_up` — then it is
    /// promoted when nothing serves the projection yet, or when the runtime promotes automatically.
    func finishBuilding(_ lease: Lease) async throws {
        let queries = core.queries, id = self.id, logger = self.logger, indexSQL = self.indexSQL
        let started = ContinuousClock.now
        // No watchdog: indexing a large read model may take longer than transactionTimeout.
        try await core.database.withReadModelTransaction(watchdog: false) { connection in
            var marked = false
            for try await _ in try await connection.query(queries.markCaughtUp(lease.key, owner: lease.owner, token: lease.token), logger: logger) {
                marked = true
            }
            guard marked else { return }
            if !indexSQL.isEmpty {
                do {
                    try await connection.runScript(indexSQL, in: id.schema, logger: logger)
                } catch {
                    throw ProjectionError(
                        .setupFailed, projection: id.name, version: id.version,
                        message: "indexSQL failed: \(String(reflecting: error))")
                }
            }
            for table in try await connection.unloggedTables(in: id.schema.name, queries: queries, logger: logger) {
                try await connection.run(
                    "ALTER TABLE \(unescaped: id.schema.quoted).\(unescaped: SQLIdentifier.quote(catalogName: table)) SET LOGGED", logger: logger)
            }
            for table in try await StableNames.relations(in: id.schema.name, kinds: ["r", "p", "m"], on: connection, queries: queries, logger: logger) {
                try await connection.run("ANALYZE \(unescaped: id.schema.quoted).\(unescaped: SQLIdentifier.quote(catalogName: table))", logger: logger)
            }
        }
        logger.info(
            "projection version caught up with the log",
            metadata: [
                "kappa.position": "\(lease.checkpoint)", "kappa.finish_duration": "\(ContinuousClock.now - started)",
            ])
    }

    /// Promotes this caught-up version when that is due: none is active and it is the name's lowest
    /// version (a higher one started meanwhile comes after it), or
    /// ``ProjectionRuntime/Configuration/promoteWhenCaughtUp`` is set and it is above the active one.
    /// Called by its own runner each time a read reaches the horizon, so it does not wait: a version
    /// behind the active one or more than ``ProjectionRuntime/Configuration/maximumPromotionLag``
    /// events behind the log (`behind`), or waiting for a lower one to be promoted first or not
    /// servable now (`notByFollowing`), is tried again at a later horizon.
    func promoteIfDue() async throws -> FollowStateMachine.Promotion {
        let versions = ProjectionVersions(core: core, projections: [])
        let rows = try await versions.versions(of: id.name).filter { $0.lifecycle != .dropped }
        if let active = rows.first(where: { $0.lifecycle == .active })?.version {
            guard core.configuration.promoteWhenCaughtUp && active < id.version else { return .settled }
        } else if let lowest = rows.map(\.version).min(), lowest < id.version {
            return .notByFollowing
        }
        do {
            try await versions.promote(id.name, version: id.version, patience: .zero)
            return .settled
        } catch let error as ProjectionError where error.code == .notCaughtUp {
            logger.debug("the caught-up version is behind; promoting it at a later horizon", metadata: ["error": "\(error)"])
            // Following on clears a lag, not a version still building or failed (as the rows had it).
            let own = rows.first { $0.version == id.version }
            return own?.lifecycle == .building || own?.state == .failed ? .notByFollowing : .behind
        } catch let error as ProjectionError {
            logger.warning("could not promote the caught-up version", metadata: ["error": "\(error)"])
            return .settled
        }
    }
}

extension PostgresConnection {
    func unloggedTables(in schema: String, queries: ProjectionQueries, logger: Logger) async throws -> [String] {
        var names: [String] = []
        for try await name in try await query(queries.unloggedTables(in: schema), logger: logger).decode(String.self) {
            names.append(name)
        }
        return names
    }
}
