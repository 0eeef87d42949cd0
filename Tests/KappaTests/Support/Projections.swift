import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import Logging
import PostgresNIO
import ServiceLifecycle
import Testing

/// A log, a projection runtime schema and unique projection names for one test.
struct ProjectionFixture: Sendable {
    let store: PostgresEventStore
    let client: PostgresClient
    let notifier: LogNotifier
    let runtimeSchema: String
    let suffix: String

    /// A projection name unique to this test (projection schemas are per database, not per schema).
    func name(_ base: String) -> String { "\(base)_\(suffix)" }

    /// A runtime configuration for this test. Live batches go through libpq's pipeline mode to the
    /// fixture's database (`pipelined`), as a deployment that sets
    /// ``ProjectionRuntime/Configuration/pipelineConnectionString`` runs them.
    func configuration(owner: String = "test", batchSize: Int = 100, lease: Duration = .seconds(2), pipelined: Bool = true) -> ProjectionRuntime.Configuration {
        var configuration = ProjectionRuntime.Configuration()
        configuration.pipelineConnectionString = pipelined ? TestDatabase.connectionString(for: TestDatabase.configuration()) : nil
        configuration.schema = runtimeSchema
        configuration.owner = owner
        configuration.batchSize = batchSize
        configuration.leaseDuration = lease
        configuration.idlePollInterval = .milliseconds(100)
        configuration.initialBackoff = .milliseconds(20)
        configuration.maximumBackoff = .milliseconds(200)
        configuration.transactionTimeout = .seconds(5)
        return configuration
    }

    func runtime(_ projections: [any Projection], reactors: [any Reactor] = [], configuration: ProjectionRuntime.Configuration? = nil) throws
        -> ProjectionRuntime
    {
        try ProjectionRuntime(
            log: store, readModels: client, projections: projections, reactors: reactors,
            notifier: notifier, configuration: configuration ?? self.configuration(), logger: testLogger)
    }

    /// Rows of `table` that differ between two read models (0: equal, table for table), ignoring `written_by`.
    func difference(_ a: String, _ b: String) async throws -> Int64 {
        let columns = "cart_id, items, total_cents, checked_out, events"
        return try await scalar(
            PostgresQuery(
                unsafeSQL: """
                    SELECT count(*) FROM ((SELECT \(columns) FROM \(a) EXCEPT ALL SELECT \(columns) FROM \(b))
                                    UNION ALL (SELECT \(columns) FROM \(b) EXCEPT ALL SELECT \(columns) FROM \(a))) d
                    """), on: client)
    }

    /// The versions API with this test's runtime schema.
    func versions(_ projections: [any Projection], configuration: ProjectionRuntime.Configuration? = nil) throws -> ProjectionVersions {
        try ProjectionVersions(
            log: store, readModels: client, projections: projections,
            configuration: configuration ?? self.configuration(owner: "versions-\(UUID().uuidString.prefix(6))"), logger: testLogger)
    }

    /// Rows that differ between two schemas' `table` on `columns` (0: equal).
    func difference(_ a: String, _ b: String, columns: String) async throws -> Int64 {
        try await scalar(
            PostgresQuery(
                unsafeSQL: """
                    SELECT count(*) FROM ((SELECT \(columns) FROM \(a) EXCEPT ALL SELECT \(columns) FROM \(b))
                                    UNION ALL (SELECT \(columns) FROM \(b) EXCEPT ALL SELECT \(columns) FROM \(a))) d
                    """), on: client)
    }

    /// Builds `projection` in-process, uninterrupted, through `position`: the reference to compare with.
    func buildReference(_ projection: any Projection, through position: LogPosition) async throws {
        let runtime = try runtime([projection], configuration: configuration(owner: "reference", batchSize: 1_000))
        try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: position, timeout: .seconds(60)) }
    }
}

func withProjectionFixture(_ body: @Sendable (ProjectionFixture) async throws -> Void) async throws {
    try await withEventStore { store, client in
        let suffix = String(UUID().uuidString.prefix(8)).lowercased()
        let notifier = try LogNotifier(client: client, schema: store.configuration.schema, logger: testLogger)
        let notifying = try PostgresEventStore(client: client, configuration: store.configuration, notifier: notifier, logger: testLogger)
        let fixture = ProjectionFixture(
            store: notifying, client: client, notifier: notifier,
            runtimeSchema: "\(store.configuration.schema)_rt", suffix: suffix)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await notifier.run() }
            defer { group.cancelAll() }
            try await body(fixture)
        }
        // Projection schemas (versions and stable names) live beside the log's; drop this test's.
        // Guarded: a test that killed the runtime's connections may leave the pool one that has just closed.
        let schemas = try await client.guardedRows(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE \("%_\(suffix)_v%") OR nspname LIKE \("%_\(suffix)") OR nspname = \(fixture.runtimeSchema)",
            logger: testLogger, resending: true
        ) { try $0.decode(String.self) }
        for schema in schemas {
            _ = try await client.guardedRows(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE"), logger: testLogger, resending: true) {
                _ in ()
            }
        }
    }
}

/// Runs `runtime` as a service while `body` runs, then shuts it down gracefully and waits for it.
func withRunning<R: Sendable>(_ runtime: ProjectionRuntime, _ body: @Sendable () async throws -> R) async throws -> R {
    let group = ServiceGroup(configuration: .init(services: [.init(service: runtime)], logger: testLogger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let result = try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}
