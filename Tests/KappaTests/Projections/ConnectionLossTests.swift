import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// The runtime's reads after its pooled connections were killed under it: the pool can hand out a
/// connection the server has just closed, and a read on it must be sent again rather than fail the
/// caller (status, the versions API, a read-your-writes wait).
@Suite(.serialized) struct ConnectionLossTests {
    @Test func readsSurviveTheirPooledConnectionsBeingKilled() async throws {
        try await withProjectionFixture { f in
            let application = "kappa_victim_\(f.suffix)"
            var configuration = TestDatabase.configuration()
            configuration.options.additionalStartupParameters = [("application_name", application)]
            try await TestDatabase.withClient(configuration: configuration, logger: testLogger) { victim in
                let store = try PostgresEventStore(client: victim, configuration: f.store.configuration, logger: testLogger)
                let seeded = try await CartEvents.seed(f.store, carts: 2, eventsPerCart: 5)
                let projection = CartSummaryProjection(name: f.name("carts"))
                // Statement by statement: its batches on the victim's connections too.
                let runtime = try ProjectionRuntime(
                    log: store, readModels: victim, projections: [projection],
                    configuration: f.configuration(pipelined: false), logger: testLogger)
                let versions = try ProjectionVersions(
                    log: store, readModels: victim, projections: [projection],
                    configuration: f.configuration(), logger: testLogger)
                try await withRunning(runtime) {
                    try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30))
                    // Each round fills the pool with idle connections, kills them all from another
                    // client, and reads at once: what the pool hands out first may be already closed.
                    let kill: PostgresQuery = """
                        SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity
                        WHERE application_name = \(application) AND state = 'idle'
                        """
                    var killed: Int64 = 0
                    for _ in 0..<15 {
                        async let a = runtime.status()
                        async let b = versions.versions(of: projection.name)
                        async let c = versions.names()
                        _ = try await (a, b, c)
                        killed += try await scalar(kill, on: f.client, retrying: false)
                        #expect(try await runtime.status().contains { $0.name == projection.name })
                        killed += try await scalar(kill, on: f.client, retrying: false)
                        #expect(try await versions.versions(of: projection.name).count == 1)
                        killed += try await scalar(kill, on: f.client, retrying: false)
                        try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(10))
                        // The store's own reads, the same way (the log's, until other suites' open
                        // transactions let the horizon pass the seed).
                        killed += try await scalar(kill, on: f.client, retrying: false)
                        #expect(try await store.readStream("cart-1", from: 1, limit: 100).count == 5)
                        killed += try await scalar(kill, on: f.client, retrying: false)
                        try await eventually("the head passes the seed") { try await store.head() >= seeded }
                        killed += try await scalar(kill, on: f.client, retrying: false)
                        try await eventually("the log reads whole") { try await store.readLog(after: .start, limit: 100).count == 10 }
                    }
                    #expect(killed >= 15)
                }
            }
        }
    }
}
