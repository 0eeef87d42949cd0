import Kappa
import Logging
import PostgresNIO

/// Operates a projection's versions: lists them, rebuilds one, compares two, promotes one to serve
/// the stable names, rolls back, drops a retired one. Every refusal is a ``ProjectionError`` that
/// says why, with nothing changed.
///
/// Get one from a runtime (``ProjectionRuntime/versions``), or build one for a command-line tool
/// with the same projections the service registers:
/// ```swift
/// let versions = try ProjectionVersions(log: store, readModels: client, projections: [CartSummaryV1(), CartSummaryV2()], logger: logger)
/// try await versions.promote("cart_summary", version: 2)
/// ```
public struct ProjectionVersions: Sendable {
    let core: RuntimeCore
    let projections: [any Projection]

    /// Operates the versions of `projections`, with the configuration the service's runtime uses.
    /// - Throws: ``KappaPostgresError/Code/invalidIdentifier`` for a projection name or version that is not
    ///   valid, or a name that is the log's or the runtime's schema.
    public init(
        log: PostgresEventStore, readModels: PostgresClient, projections: [any Projection],
        configuration: ProjectionRuntime.Configuration = .init(), logger: Logger
    ) throws {
        for projection in projections {
            _ = try ProjectionID(name: projection.name, version: projection.version)
            try ProjectionID.checkNotClashing(projection.name, with: [configuration.schema, log.configuration.schema])
        }
        self.init(
            core: try RuntimeCore(log: log, readModels: readModels, notifier: nil, configuration: configuration, logger: logger),
            projections: projections)
    }

    /// Events this instance's bulk rebuilds read from the log.
    package var rebuildEventsRead: Int { core.rebuildEventsRead.load(ordering: .relaxed) }

    init(core: RuntimeCore, projections: [any Projection]) {
        self.core = core
        self.projections = projections
    }

    /// Creates or updates the runtime's tables (idempotent).
    /// - Throws: ``KappaPostgresError/Code/invalidConfiguration`` when the runtime's schema on the
    ///   read-model server holds an event log: the read models' URL, or the runtime's schema, points
    ///   at the log's.
    public func migrate() async throws {
        try await refuseALogsSchema()
        try await Migrator(client: core.readModels, schema: core.configuration.schema, logger: core.logger)
            .migrate(Migration.projectionRuntime)
    }

    /// Refuses to put the runtime's tables beside a log's, naming the schema and the server.
    package func refuseALogsSchema() async throws {
        // A log's schema records the log's first migration; the runtime's records its own.
        let schema = core.configuration.schema
        let here = try await core.database.readModelRows(core.queries.migrationsTable(in: schema), resending: true) {
            try $0.decode((String, String, Int32, Bool).self)
        }
        guard let (database, host, port, hasMigrations) = here.first, hasMigrations, let first = Migration.eventLog.first?.name else { return }
        let logs = try await core.database.readModelRows(
            core.queries.logMigrations(in: try SQLIdentifier(schema, role: "runtime schema"), first: first), resending: true
        ) { try $0.decode(Int64.self) }
        guard logs.first ?? 0 > 0 else { return }
        throw KappaPostgresError(
            .invalidConfiguration,
            message: """
                the runtime's schema '\(schema)' on the read-model server (\(host):\(port), database \(database)) holds an event log: \
                the read models' URL or the runtime's schema (KAPPA_RUNTIME_SCHEMA) points at the log's; give the runtime a schema of its own
                """)
    }

    /// The names of every projection with a version in the read-model database.
    public func names() async throws -> [String] {
        try await core.database.readModelRows(core.queries.names(), resending: true) { try $0.decode(String.self) }
    }

    /// Every version of `name` the read-model database knows, lowest first.
    public func versions(of name: String) async throws -> [ProjectionVersion] {
        try await core.database.readModelRows(core.queries.versions(name), resending: true) { try ProjectionVersion(name: name, row: $0) }
    }

    /// The version the stable names point at, if any.
    public func activeVersion(of name: String) async throws -> Int? {
        try await versions(of: name).first { $0.lifecycle == .active }?.version
    }

    /// Events in the log after `version`'s checkpoint, counting no further than `limit`.
    public func lag(of version: ProjectionVersion, limit: Int = Int(Int32.max)) async throws -> Int {
        try await core.log.countEvents(after: version.checkpoint, limit: limit)
    }

    /// Points the stable names at `version`, retiring the active version (which keeps following the
    /// log, for a rollback). One transaction: readers see the old version or the new one, never both.
    ///
    /// - Throws: ``ProjectionError`` — `unknownVersion`, `versionDropped`, `alreadyActive`,
    ///   `versionBelowActive` (use ``rollback(_:)``), `notCaughtUp` (still building, failed, or more than
    ///   ``ProjectionRuntime/Configuration/maximumPromotionLag`` events behind).
    public func promote(_ name: String, version: Int) async throws {
        try await promote(name, version: version, patience: Self.catchUpPatience)
    }

    /// ``promote(_:version:)``, waiting at most `patience` for a target a batch behind the active version.
    func promote(_ name: String, version: Int, patience: Duration) async throws {
        _ = try ProjectionID(name: name, version: version)
        try await switchStableNames(name, kind: "promote", patience: patience) { rows, measuringLag in
            guard let target = rows.first(where: { $0.version == version }) else {
                throw ProjectionError(.unknownVersion, projection: name, version: version, message: "no such version is registered; rebuild it first")
            }
            let active = rows.first { $0.lifecycle == .active }
            if active?.version == version {
                throw ProjectionError(.alreadyActive, projection: name, version: version, message: "is already the active version")
            }
            if let active, version < active.version {
                throw ProjectionError(
                    .versionBelowActive, projection: name, version: version,
                    message: "is lower than the active version \(active.version); use rollback to go back")
            }
            try await requireServable(target, measuringLag: measuringLag)
            try requireNotBehind(target, active)
            return (version, active?.version)
        }
    }

    /// Points the stable names back at the highest retired version below the active one, which
    /// becomes active again; the version rolled back from is retired (and keeps following the log).
    /// - Returns: the version now active.
    /// - Throws: ``ProjectionError`` — `noPreviousVersion`, `notCaughtUp`.
    @discardableResult
    public func rollback(_ name: String) async throws -> Int {
        _ = try ProjectionID(name: name, version: 1)
        return try await switchStableNames(name, kind: "rollback") { rows, measuringLag in
            guard let active = rows.first(where: { $0.lifecycle == .active }) else {
                throw ProjectionError(.noPreviousVersion, projection: name, message: "no version is active, so there is nothing to roll back")
            }
            guard let target = rows.filter({ $0.lifecycle == .retired && $0.version < active.version }).max(by: { $0.version < $1.version }) else {
                throw ProjectionError(
                    .noPreviousVersion, projection: name, version: active.version,
                    message: "no retired version below the active one is left to roll back to")
            }
            try await requireServable(target, measuringLag: measuringLag)
            try requireNotBehind(target, active)
            return (target.version, active.version)
        }
    }

    /// Drops a retired version: its schema and rows go; the version cannot be run again until it is rebuilt.
    /// - Throws: ``ProjectionError`` — `unknownVersion`, `versionIsActive`, `notRetired`, `versionDropped`.
    public func drop(_ name: String, version: Int) async throws {
        let id = try ProjectionID(name: name, version: version)
        let queries = core.queries, logger = core.logger
        try await durableTransaction { connection in
            try await connection.run(queries.lockVersions(name), logger: logger)
            // Not FOR UPDATE: a runner's batch locks its row at its end, after its table writes, so
            // holding the row here while waiting for those tables would deadlock. The advisory lock
            // keeps other version changes out.
            let rows = try await Self.rows(name, locking: false, on: connection, queries: queries, logger: logger)
            guard let target = rows.first(where: { $0.version == version }) else {
                throw ProjectionError(.unknownVersion, projection: name, version: version, message: "no such version is registered")
            }
            switch target.lifecycle {
            case .retired: break
            case .active:
                throw ProjectionError(
                    .versionIsActive, projection: name, version: version,
                    message: "is the active version; promote another version or roll back first")
            case .dropped:
                throw ProjectionError(.versionDropped, projection: name, version: version, message: "was dropped already")
            case .building, .caughtUp:
                throw ProjectionError(
                    .notRetired, projection: name, version: version,
                    message: "is \(target.lifecycle), not retired; only a version that was active and was replaced can be dropped")
            }
            // The schema first: this waits for a batch in flight to commit; then the token moves, so
            // the version's runner can write nothing more.
            try await connection.run("DROP SCHEMA IF EXISTS \(unescaped: id.schema.quoted) CASCADE", logger: logger)
            try await connection.run(queries.markDropped(name, version: version), logger: logger)
            try await connection.run(queries.deletePartitions(LeaseKey(name: name, version: version)), logger: logger)
        }
        core.logger.notice("dropped a retired projection version", metadata: ["kappa.projection": "\(name)", "kappa.version": "\(version)"])
    }

    /// Refuses a version that cannot serve: building, failed, dropped, or lagging.
    /// Readers never move back along the log: the target must have applied at least what the active
    /// version has. Both follow the log, so a short wait (``switchStableNames``) usually settles it.
    private func requireNotBehind(_ target: ProjectionVersion, _ active: ProjectionVersion?) throws {
        if let active, target.checkpoint < active.checkpoint {
            throw BehindActive(target: target, active: active)
        }
    }

    /// `measuringLag`: also count the log after the target's checkpoint (a query of its own, on the
    /// log's client), refused beyond ``ProjectionRuntime/Configuration/maximumPromotionLag``.
    private func requireServable(_ target: ProjectionVersion, measuringLag: Bool) async throws {
        switch target.lifecycle {
        case .dropped:
            throw ProjectionError(.versionDropped, projection: target.name, version: target.version, message: "was dropped; rebuild it first")
        case .building:
            throw ProjectionError(
                .notCaughtUp, projection: target.name, version: target.version,
                message: "is still building (at \(target.checkpoint)); wait until it has caught up")
        default: break
        }
        if target.state == .failed {
            throw ProjectionError(.notCaughtUp, projection: target.name, version: target.version, message: "has failed on a poison event; see its status")
        }
        guard measuringLag else { return }
        let allowed = core.configuration.maximumPromotionLag
        let lag = try await lag(of: target, limit: allowed + 1)
        if lag > allowed {
            throw ProjectionError(
                .notCaughtUp, projection: target.name, version: target.version,
                message: "is more than \(allowed) events behind the log (maximumPromotionLag); wait until it catches up")
        }
    }

    static func rows(_ name: String, locking: Bool = true, on connection: PostgresConnection, queries: ProjectionQueries, logger: Logger) async throws
        -> [ProjectionVersion]
    {
        var rows: [ProjectionVersion] = []
        for try await row in try await connection.query(queries.versions(name, locking: locking), logger: logger) {
            rows.append(try ProjectionVersion(name: name, row: row))
        }
        return rows
    }
}
