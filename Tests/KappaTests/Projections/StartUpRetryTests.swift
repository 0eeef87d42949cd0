import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// A runtime whose start-up meets a fault that passes retries it instead of giving up: here a
/// lock its set-up waits for is not granted within the session's `lock_timeout` (SQLSTATE 55P03),
/// as a set-up meets a failover or a killed connection.
@Suite(.serialized) struct StartUpRetryTests {
    @Test func aStartUpFaultThatPassesIsRetriedUntilItPasses() async throws {
        try await withProjectionFixture { f in
            let seeded = try await CartEvents.seed(f.store, carts: 3, eventsPerCart: 4)
            let projection = CartSummaryProjection(name: f.name("patient"))
            var impatient = TestDatabase.configuration()
            impatient.options.additionalStartupParameters = [("lock_timeout", "100ms")]
            try await TestDatabase.withClient(configuration: impatient, logger: testLogger) { readModels in
                let runtime = try ProjectionRuntime(
                    log: f.store, readModels: readModels, projections: [projection], notifier: f.notifier,
                    configuration: f.configuration(), logger: testLogger)
                try await f.client.withConnection { holder in
                    // The lock a version's set-up takes, held here first.
                    let lock: PostgresQuery = "SELECT pg_advisory_lock(hashtext('kappa.projection.' || \("\(projection.name)_v1")))"
                    _ = try await holder.query(lock, logger: testLogger).collect()
                    try await withRunning(runtime) {
                        // Two different transactions of the runtime waiting on it in turn: it gave up
                        // once (after 100 ms) and tried again.
                        let waiting: PostgresQuery = """
                            SELECT coalesce(min(a.xact_start)::text, '') FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                            WHERE l.locktype = 'advisory' AND NOT l.granted
                              AND ((l.classid::int8 << 32) | l.objid::int8) = hashtext('kappa.projection.' || \("\(projection.name)_v1"))::int8
                            """
                        let first = Locked("")
                        try await eventually("the set-up waits for the lock") {
                            let now = try await f.client.query(waiting, logger: testLogger).collect().first!.decode(String.self)
                            first.withLock { $0 = now }
                            return !now.isEmpty
                        }
                        try await eventually("the set-up gave up and waits again") {
                            let now = try await f.client.query(waiting, logger: testLogger).collect().first!.decode(String.self)
                            return !now.isEmpty && now != first.withLock { $0 }
                        }
                        _ = try await holder.query("SELECT pg_advisory_unlock_all()", logger: testLogger).collect()
                        try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30))
                    }
                }
            }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(events)::int8 FROM \(projection.name)_v1.carts"), on: f.client) == 12)
        }
    }
}
