import Foundation
import KappaPostgres
import Logging
import PostgresNIO

/// A throw-away schema on the PostgreSQL server named by the standard `PG*` environment variables
/// (`PGHOST`, default `localhost`; `PGPORT`, default 5432; `PGUSER`, default `postgres`; `PGPASSWORD`;
/// `PGDATABASE`, default `postgres`) — what `pg_virtualenv` sets.
///
/// ```swift
/// try await TestDatabase.withSchema { client, schema in
///     let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: logger)
///     …
/// }
/// ```
/// Tests that need the database fail, never skip, when it cannot be reached.
public enum TestDatabase {
    /// The client configuration from the environment.
    public static func configuration(environment: [String: String] = ProcessInfo.processInfo.environment) -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: environment["PGHOST"].flatMap { $0.isEmpty || $0.hasPrefix("/") ? nil : $0 } ?? "localhost",
            port: environment["PGPORT"].flatMap(Int.init) ?? 5432,
            username: environment["PGUSER"] ?? "postgres",
            password: environment["PGPASSWORD"],
            database: environment["PGDATABASE"] ?? "postgres",
            tls: .disable
        )
        configuration.options.maximumConnections = 40
        return configuration
    }

    /// The libpq connection string of a configuration without TLS (tests' clusters): for
    /// ``ProjectionRuntime/Configuration/pipelineConnectionString`` beside a client of `configuration`.
    public static func connectionString(for configuration: PostgresClient.Configuration) -> String {
        func quoted(_ value: String) -> String {
            "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        var parts = ["host=\(quoted(configuration.host ?? "localhost"))", "port=\(configuration.port ?? 5432)", "user=\(quoted(configuration.username))"]
        if let password = configuration.password { parts.append("password=\(quoted(password))") }
        if let database = configuration.database { parts.append("dbname=\(quoted(database))") }
        return (parts + ["sslmode=disable"]).joined(separator: " ")
    }

    /// Runs `body` with a running client; the client shuts down afterwards.
    public static func withClient<Result: Sendable>(
        configuration: PostgresClient.Configuration = TestDatabase.configuration(),
        logger: Logger = Logger(label: "kappa.test"),
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            // Fail fast, with a clear message, when no server is there.
            do {
                try await client.query("SELECT 1", logger: logger)
            } catch {
                throw TestDatabaseUnavailable(configuration: configuration, underlying: "\(String(reflecting: error))")
            }
            return try await body(client)
        }
    }

    /// Runs `body` with a running client and a new, empty schema, dropped afterwards.
    public static func withSchema<Result: Sendable>(
        prefix: String = "test",
        logger: Logger = Logger(label: "kappa.test"),
        _ body: @Sendable (PostgresClient, String) async throws -> Result
    ) async throws -> Result {
        let schema = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        return try await withClient(logger: logger) { client in
            try await client.query("CREATE SCHEMA \(unescaped: "\"\(schema)\"")", logger: logger)
            // Guarded, and sent again if it meets a lost connection: a test that killed a backend can
            // leave the pool a connection that has just closed, and postgres-nio never answers a
            // statement written to one.
            @Sendable func drop() async throws {
                _ = try await client.guardedRows("DROP SCHEMA IF EXISTS \(unescaped: "\"\(schema)\"") CASCADE", logger: logger, resending: true) { _ in () }
                _ = try await client.guardedRows(dropRoles(of: schema), logger: logger, resending: true) { _ in () }
            }
            do {
                let result = try await body(client, schema)
                try await drop()
                return result
            } catch {
                try? await drop()
                throw error
            }
        }
    }
}

extension TestDatabase {
    /// Runs `body` with the configuration of a new, empty database on the test server, dropped
    /// afterwards with every session still in it. A database of its own keeps a test's log apart from
    /// other tests' transactions: a transaction of another database never holds its horizon back.
    /// Name the log's schemas in it `<database>_…`: the roles their migrations created are dropped too.
    public static func withDatabase<Result: Sendable>(
        prefix: String = "test",
        logger: Logger = Logger(label: "kappa.test"),
        _ body: @Sendable (PostgresClient.Configuration) async throws -> Result
    ) async throws -> Result {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        let configuration = {
            var configuration = TestDatabase.configuration()
            configuration.database = name
            return configuration
        }()
        return try await withClient(logger: logger) { client in
            try await client.query("CREATE DATABASE \(unescaped: "\"\(name)\"")", logger: logger)
            @Sendable func drop() async throws {
                _ = try await client.guardedRows("DROP DATABASE IF EXISTS \(unescaped: "\"\(name)\"") WITH (FORCE)", logger: logger, resending: true) { _ in ()
                }
                _ = try await client.guardedRows(dropRoles(of: name), logger: logger, resending: true) { _ in () }
            }
            do {
                let result = try await body(configuration)
                try await drop()
                return result
            } catch {
                try? await drop()
                throw error
            }
        }
    }
}

/// Drops the roles a log migration created for `schema` (`<schema>_writer`, `<schema>_reader`) and
/// for schemas a test named after it (`<schema>_2_writer`, …), unless such a schema still exists:
/// roles are cluster-wide, and would otherwise pile up over thousands of test runs. The schema's
/// objects are gone, so no grant holds a role back; memberships in it are dropped with it.
private func dropRoles(of schema: String) -> PostgresQuery {
    PostgresQuery(
        unsafeSQL: """
            DO $drop$
            DECLARE
                role name;
            BEGIN
                FOR role IN SELECT rolname FROM pg_roles
                    WHERE starts_with(rolname, '\(schema)_') AND right(rolname, 7) IN ('_writer', '_reader')
                      AND NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = left(rolname, -7))
                LOOP
                    EXECUTE format('DROP ROLE %I', role);
                END LOOP;
            END
            $drop$
            """)
}

/// The test database could not be reached.
public struct TestDatabaseUnavailable: Error, CustomStringConvertible {
    let configuration: PostgresClient.Configuration
    let underlying: String

    public var description: String {
        "cannot reach the test database at \(configuration.host ?? "?"):\(configuration.port ?? 0) as \(configuration.username)"
            + " (set PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, or run the tests through scripts/test): \(underlying)"
    }
}
