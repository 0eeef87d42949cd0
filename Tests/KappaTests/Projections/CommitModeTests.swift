import Foundation
import Kappa
import KappaFixtures
@testable import KappaPostgres
import PostgresNIO
import Testing

@Suite("Read-model commit mode", .serialized)
struct CommitModeTests {
    /// A batch's transaction commits without waiting for the disk (the default) because the statement
    /// that moves its checkpoint sets `synchronous_commit` off for it — no `SET LOCAL` round trip of
    /// its own. With `synchronousReadModelCommits` the setting is left as the server has it.
    @Test(arguments: [false, true]) func theCheckpointStatementSetsTheCommitMode(synchronous: Bool) async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("carts"))
            let seeded = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }

            var configuration = f.configuration(owner: "commit-mode")
            configuration.synchronousReadModelCommits = synchronous
            let core = try RuntimeCore(log: f.store, readModels: f.client, notifier: nil, configuration: configuration, logger: testLogger)
            let key = LeaseKey(name: projection.name, version: 1)
            let lease = try #require(try await Lease.acquire(.projections, key, core: core))
            let setting = try await core.withReadModelTransaction { connection in
                var before = "", after = ""
                for try await value in try await connection.query("SELECT current_setting('synchronous_commit')", logger: testLogger).decode(String.self) {
                    before = value
                }
                try await lease.advance(to: lease.checkpoint, applied: 0, state: "live", on: connection, core: core)
                for try await value in try await connection.query("SELECT current_setting('synchronous_commit')", logger: testLogger).decode(String.self) {
                    after = value
                }
                return (before, after)
            }
            #expect(setting.0 == "on")
            #expect(setting.1 == (synchronous ? "on" : "off"))
            await lease.release(core: core)
        }
    }
}
