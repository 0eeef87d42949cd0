import Logging
import PostgresNIO

/// Applies versioned SQL migrations to one schema: in order, each once, checksummed.
///
/// A run takes a transaction-scoped advisory lock for the schema, so two processes starting at once
/// apply each file once; the second waits, then finds nothing to do. All pending files are applied
/// in that one transaction with `search_path` set to the schema, and recorded in `kappa_migrations`.
/// A run refuses to start when an applied file has been edited since (its SHA-256 differs).
/// A schema already up to date is only read, so an application's role that does not own it (and
/// may not create anything) can run `migrate()` at every start; the owner applies what is new.
public struct Migrator: Sendable {
    /// The client of the database migrated; it must be running.
    public let client: PostgresClient
    let schema: SQLIdentifier
    let logger: Logger

    /// - Throws: ``KappaPostgresError/Code/invalidIdentifier`` when `schema` is not a safe name.
    public init(client: PostgresClient, schema: String, logger: Logger) throws {
        self.client = client
        self.schema = try SQLIdentifier(schema, role: "schema")
        var logger = logger
        logger[metadataKey: "kappa.schema"] = "\(schema)"
        self.logger = logger
    }

    /// Applies whichever of `migrations` are not yet applied.
    /// - Returns: The migrations this call applied (empty when all were applied already).
    /// - Throws: ``KappaPostgresError`` for every failure: a refused file by its code, and anything
    ///   else (a lost connection, say) as ``KappaPostgresError/Code/migrationFailed`` with the cause as
    ///   `underlying`. Nothing of a failed run is kept.
    @discardableResult
    public func migrate(_ migrations: [Migration]) async throws -> [Migration] {
        let migrations = try Migration.ordered(migrations)
        do {
            do {
                return try await apply(migrations)
            } catch let error as PSQLError where [.duplicateSchema, .duplicateTable].contains(error.sqlState) {
                // A run that began before a concurrent one committed the schema or its migrations
                // table may not see them even after waiting for the lock (its catalogue cache is as
                // of its start); run again, in a new transaction, which does.
                logger.debug("the schema was created by a concurrent run; migrating again", metadata: ["error": "\(String(reflecting: error))"])
                return try await apply(migrations)
            }
        } catch let error as KappaPostgresError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            let cause = Self.cause(error)
            throw KappaPostgresError(.migrationFailed, message: "migrating schema \(schema.name) failed: \(cause)", underlying: cause)
        }
    }

    private func apply(_ migrations: [Migration]) async throws -> [Migration] {
        let schema = self.schema
        let logger = self.logger
        // Not PostgresClient.withTransaction: its ROLLBACK on a connection the server has just closed
        // never ends (see ConnectionGuard); under the guard, the connection's close fails the run at once.
        return try await client.withConnection { connection in
            try await ConnectionGuard.shared.run(on: connection) {
                try await inTransaction(on: connection, send: { try await connection.run($0, logger: logger) }) {
                    try await connection.run("SELECT pg_advisory_xact_lock(hashtext('kappa.migrate.' || \(schema.name)))", logger: logger)
                    // Created only when missing: CREATE … IF NOT EXISTS needs the privilege to
                    // create even when there is nothing to do, which a role that does not own the
                    // schema lacks; under the lock, nothing can create them meanwhile.
                    let existing = try await connection.query(
                        "SELECT to_regnamespace(\(schema.quoted)) IS NOT NULL, to_regclass(\(schema.quoted + ".kappa_migrations")) IS NOT NULL",
                        logger: logger
                    ).collect().first!.decode((Bool, Bool).self)
                    if !existing.0 { try await connection.run("CREATE SCHEMA \(unescaped: schema.quoted)", logger: logger) }
                    if !existing.1 {
                        try await connection.run(
                            """
                            CREATE TABLE \(unescaped: schema.quoted).kappa_migrations (
                                version integer PRIMARY KEY,
                                name text NOT NULL,
                                checksum text NOT NULL,
                                applied_at timestamptz NOT NULL DEFAULT now()
                            )
                            """, logger: logger)
                    }
                    let checksums = try await Self.checksums(of: migrations, on: connection, logger: logger)
                    var applied: [Int: (name: String, checksum: String)] = [:]
                    for try await (version, name, checksum) in try await connection.query(
                        "SELECT version, name, checksum FROM \(unescaped: schema.quoted).kappa_migrations", logger: logger
                    ).decode((Int, String, String).self) {
                        applied[version] = (name, checksum)
                    }
                    let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
                    for (version, record) in applied.sorted(by: { $0.key < $1.key }) {
                        guard let migration = known[version] else {
                            throw KappaPostgresError(
                                .unknownAppliedMigration, file: record.name,
                                message: "schema \(schema.name) has migration '\(record.name)' applied, but no such file was given")
                        }
                        guard checksums[version] == record.checksum else {
                            throw KappaPostgresError(
                                .migrationChecksumMismatch, file: migration.name,
                                message:
                                    "migration '\(migration.name)' was edited after it was applied to schema \(schema.name); applied files must never change — add a new file instead"
                            )
                        }
                    }
                    var done: [Migration] = []
                    for migration in migrations where applied[migration.version] == nil {
                        do {
                            try await connection.runScript(migration.sql, in: schema, logger: logger)
                        } catch {
                            let cause = Self.cause(error)
                            throw KappaPostgresError(
                                .migrationFailed, file: migration.name,
                                message: "migration '\(migration.name)' failed: \(cause)", underlying: cause)
                        }
                        try await connection.run(
                            """
                            INSERT INTO \(unescaped: schema.quoted).kappa_migrations (version, name, checksum)
                            VALUES (\(migration.version), \(migration.name), \(checksums[migration.version]!))
                            """, logger: logger)
                        logger.info("applied migration", metadata: ["kappa.migration": "\(migration.name)"])
                        done.append(migration)
                    }
                    return done
                }
            }
        }
    }

    /// A driver error as the server's SQLSTATE, message and detail (not the statement, which
    /// `String(reflecting:)` of a `PSQLError` would include); any other error as it is.
    private static func cause(_ error: any Error) -> any Error & Sendable {
        (error as? PSQLError).map(DriverError.init) ?? error
    }

    /// SHA-256 of each migration's SQL, hex, computed by the server (no crypto library needed).
    private static func checksums(of migrations: [Migration], on connection: PostgresConnection, logger: Logger) async throws -> [Int: String] {
        var result: [Int: String] = [:]
        let rows = try await connection.query(
            """
            SELECT v, encode(sha256(convert_to(s, 'UTF8')), 'hex')
            FROM unnest(\(migrations.map(\.version))::int8[], \(migrations.map(\.sql))::text[]) AS m(v, s)
            """, logger: logger)
        for try await (version, checksum) in rows.decode((Int, String).self) {
            result[version] = checksum
        }
        return result
    }
}
