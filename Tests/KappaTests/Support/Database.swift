import Foundation
import Kappa
@testable import KappaPostgres
import KappaTesting
import Logging
import PostgresNIO
import Synchronization

let testLogger = Logger(label: "kappa.test")

/// A migrated event store in a schema of its own, dropped afterwards.
func withEventStore(
    preparedStatements: Bool = true,
    _ body: @Sendable (PostgresEventStore, PostgresClient) async throws -> Void
) async throws {
    try await TestDatabase.withSchema(prefix: "kappa_test") { client, schema in
        var configuration = PostgresEventStore.Configuration(schema: schema)
        configuration.preparedStatements = preparedStatements
        let store = try PostgresEventStore(client: client, configuration: configuration, logger: testLogger)
        try await store.migrate()
        try await body(store, client)
    }
}

/// `count` encoded deposits, for appends that need some events.
func deposits(_ count: Int, startingAt first: Int = 1) throws -> [NewEvent] {
    try (0..<count).map {
        try AccountEvent.registry.encode(.deposited(MoneyDeposited(cents: first + $0)), id: UUID(), recordedAt: Date())
    }
}

/// Runs a query and decodes a single Int64 (a count or a version), -1 for no row.
///
/// Guarded like the runtime's own queries: postgres-nio 1.33's pool can hand out a connection that a
/// `pg_terminate_backend` has just closed, and a query written to it never ends. Here such a query
/// fails within 50 ms and is sent again on another connection — unless `retrying` is false: a
/// statement that changes something may have run before its connection was lost.
func scalar(_ query: PostgresQuery, on client: PostgresClient, retrying: Bool = true) async throws -> Int64 {
    try await client.guardedRows(query, logger: testLogger, resending: retrying) { try $0.decode(Int64.self) }.last ?? -1
}

/// A value shared between test tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout sending Value) throws -> sending R) rethrows -> R {
        try mutex.withLock(body)
    }
}
