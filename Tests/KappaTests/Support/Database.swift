import Foundation
import Kappa
import KappaTesting
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import KappaPostgres

let testLogger = Logger(label: "kappa.test")

/// How a test store sends its appends.
enum AppendPath: String, CaseIterable, Sendable {
    /// Prepared statements through the client (the default).
    case prepared
    /// The log's PL/pgSQL functions through the client (`preparedStatements` off).
    case functions
    /// Held libpq connections (`appendConnectionString`), the store running beside the test.
    case libpq
}

/// A migrated event store in a schema of its own, dropped afterwards; with `.libpq`, running, its
/// libpq connections held. `appendsInFlight`: its configuration's.
func withEventStore(
    _ path: AppendPath = .prepared,
    appendsInFlight: Int = 1,
    _ body: @Sendable (PostgresEventStore, PostgresClient) async throws -> Void
) async throws {
    try await TestDatabase.withSchema(prefix: "kappa_test") { client, schema in
        var configuration = PostgresEventStore.Configuration(schema: schema)
        configuration.preparedStatements = path != .functions
        configuration.appendsInFlight = appendsInFlight
        if path == .libpq { configuration.appendConnectionString = TestDatabase.connectionString(for: TestDatabase.configuration()) }
        let store = try PostgresEventStore(client: client, configuration: configuration, logger: testLogger)
        try await store.migrate()
        guard path == .libpq else { return try await body(store, client) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            try await eventually("the store holds its libpq connections", timeout: .seconds(10)) {
                store.libpqConnections.idleCount == store.configuration.heldAppendConnections
            }
            try await body(store, client)
            #expect(store.libpqConnections.borrows.load(ordering: .relaxed) > 0, "appends went through libpq")
        }
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

/// A LOGIN role granted `groups`, and a client logged in as it, for `body`; afterwards the role is
/// dropped with whatever it owns in this database, once its sessions have ended (a closing
/// session's temporary objects keep a role in use for a moment, 2BP01).
func withLogin<R: Sendable>(
    granted groups: [String], admin: PostgresClient, _ body: @Sendable (PostgresClient, String) async throws -> R
) async throws -> R {
    let role = "kappa_login_\(UUID().uuidString.prefix(8).lowercased())"
    let password = UUID().uuidString
    try await admin.query("CREATE ROLE \(unescaped: role) LOGIN PASSWORD '\(unescaped: password)'", logger: testLogger)
    @Sendable func drop() async throws {
        try await dropRole(role, on: admin)
    }
    do {
        for group in groups { try await catalogChange("GRANT \(unescaped: group) TO \(unescaped: role)", on: admin) }
        var configuration = TestDatabase.configuration()
        configuration.username = role
        configuration.password = password
        configuration.options.maximumConnections = 4
        let result = try await TestDatabase.withClient(configuration: configuration) { try await body($0, role) }
        try await drop()
        return result
    } catch {
        try? await drop()
        throw error
    }
}

/// Drops `role` and what it owns in this database, once its sessions have ended. Sessions still
/// there 10 s after their client's `run()` returned are logged with what they last ran, then
/// terminated: in whole-suite runs under load, several a run, they were idle (waiting for the
/// client) after an ordinary statement, so their pooled connections were left open by the client's
/// shutdown; never seen in runs of the suites that use logins alone.
func dropRole(_ role: String, on admin: PostgresClient) async throws {
    let count: PostgresQuery = "SELECT count(*) FROM pg_stat_activity WHERE usename = \(role)"
    do {
        try await eventually("the sessions of \(role) ended", timeout: .seconds(10)) { try await scalar(count, on: admin) == 0 }
    } catch {
        var sessions: [String] = []
        for try await (pid, state, wait, query, started) in try await admin.query(
            """
            SELECT pid, coalesce(state, ''), coalesce(wait_event_type || ':' || wait_event, ''), coalesce(query, ''),
                   coalesce(to_char(backend_start, 'HH24:MI:SS.MS'), '')
            FROM pg_stat_activity WHERE usename = \(role)
            """, logger: testLogger
        ).decode((Int32, String, String, String, String).self) {
            sessions.append("pid \(pid) started \(started), \(state) \(wait): \(query.prefix(200))")
        }
        testLogger.notice("terminating sessions that outlived their client", metadata: ["kappa.role": "\(role)", "kappa.sessions": "\(sessions)"])
        try await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = \(role)", logger: testLogger)
        try await eventually("the sessions of \(role) ended") { try await scalar(count, on: admin) == 0 }
    }
    try await catalogChange("DROP OWNED BY \(unescaped: role)", on: admin)
    try await catalogChange("DROP ROLE \(unescaped: role)", on: admin)
}

/// A change to shared catalog rows (a grant on the database, `DROP OWNED BY`), sent again when it
/// met another test's change of the same row: PostgreSQL refuses the second of two concurrent
/// updates of one catalog row with "tuple concurrently updated" (XX000) instead of waiting.
/// Each of these statements does all or nothing, so sending it again is safe.
func catalogChange(_ statement: PostgresQuery, on admin: PostgresClient) async throws {
    var attempt = 0
    while true {
        do {
            try await admin.query(statement, logger: testLogger)
            return
        } catch let error as PSQLError
            where error.serverInfo?[.sqlState] == "XX000"
            && error.serverInfo?[.message] == "tuple concurrently updated" && attempt < 20
        {
            attempt += 1
            try await Task.sleep(for: .milliseconds(10 * attempt))
        }
    }
}
