import Foundation
import Kappa
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// The projection runtime's own transactions hold the log's horizon back only when its read-model
/// role may append: logged in as a role granted the log's reader (the deployment the log's guide shows),
/// a batch left open for as long as it likes holds no follower back.
@Suite("A projector's role and the log's horizon", .serialized)
struct ProjectorRoleTests {
    @Test(arguments: [false, true]) func anOpenBatchHoldsFollowersOnlyIfItsRoleMayAppend(mayAppend: Bool) async throws {
        try await withProjectionFixture { f in
            let log = f.store.configuration.schema
            let database = try await f.client.query("SELECT current_database()", logger: testLogger).collect().first!.decode(String.self)
            let groups = ["\(log)_reader"] + (mayAppend ? ["\(log)_writer"] : [])
            try await withLogin(granted: groups, admin: f.client) { projector, role in
                // The runtime creates its schema and the read model's.
                try await catalogChange(PostgresQuery(unsafeSQL: "GRANT CREATE ON DATABASE \"\(database)\" TO \(role)"), on: f.client)
                let gate = Locked(false)
                let projection = EventProjection(name: f.name("slow"), version: 1, setupSQL: "CREATE TABLE seen (id uuid PRIMARY KEY)") { event, context in
                    try await context.execute("INSERT INTO \(unescaped: context.schema).seen VALUES (\(event.id))")
                    while !gate.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) } // the batch stays open
                }
                // Statement by statement: the batch's transaction is open while the handler waits
                // (a pipelined batch opens none until its handler has returned).
                var configuration = f.configuration(lease: .seconds(30), pipelined: false)
                configuration.transactionTimeout = .seconds(60)
                let runtime = try ProjectionRuntime(
                    log: f.store, readModels: projector, projections: [projection],
                    notifier: f.notifier, configuration: configuration, logger: testLogger)
                try await withRunning(runtime) {
                    _ = try await f.store.append(try deposits(1), to: "account-1", expectedVersion: .noStream)
                    // The batch's transaction: written (an id) and idle while its handler waits, told
                    // apart from the runtime's other transactions by its last statement.
                    let openBatch: PostgresQuery = """
                        SELECT coalesce(max(backend_xid::text::int8), -1) FROM pg_stat_activity
                        WHERE usename = \(role) AND state = 'idle in transaction' AND query LIKE '%.seen VALUES%'
                        """
                    try await eventually("the batch has written and stays open") { try await scalar(openBatch, on: f.client) > 0 }
                    let batch = try await scalar(openBatch, on: f.client)
                    let stillOpen: PostgresQuery = "SELECT count(*) FROM pg_stat_activity WHERE backend_xid::text::int8 = \(batch)"
                    let position = try await f.store.append(try deposits(1), to: "account-2", expectedVersion: .noStream).lastPosition!
                    if mayAppend {
                        #expect(try await f.store.horizonHolders().contains { $0.role == role }, "the batch is named")
                        #expect(try await f.store.head() < position, "held back behind the open batch")
                    } else {
                        try await eventually("the head passes the append while the batch is open") { try await f.store.head() >= position }
                        #expect(try await !f.store.horizonHolders().contains { $0.role == role })
                        #expect(try await scalar(stillOpen, on: f.client) == 1, "the batch was still open")
                    }
                    gate.withLock { $0 = true }
                    try await runtime.waitUntil(projection.name, hasPassed: position, timeout: .seconds(20))
                }
            }
        }
    }
}
