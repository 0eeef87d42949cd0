import Foundation
import Kappa
import KappaFixtures
@testable import KappaPostgres
import PostgresNIO
import Testing

/// A ``SingleStatementProjection``'s live batch: its writes and the fenced checkpoint move in one
/// statement, which commits both or neither.
@Suite("Single-statement batches", .serialized)
struct SingleStatementBatchTests {
    /// Sets up `projection` through a runtime run (its schema, tables and runtime row), and returns a
    /// core of another owner with the lease taken, ready to send batches by hand.
    func leased(_ f: ProjectionFixture, _ projection: any Projection, synchronous: Bool = false) async throws -> (RuntimeCore, Lease) {
        let seeded = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
        let runtime = try f.runtime([projection])
        try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }
        var configuration = f.configuration(owner: "by-hand")
        configuration.synchronousReadModelCommits = synchronous
        let core = try RuntimeCore(log: f.store, readModels: f.client, notifier: nil, configuration: configuration, logger: testLogger)
        let lease = try #require(try await Lease.acquire(.projections, LeaseKey(name: projection.name, version: 1), core: core))
        return (core, lease)
    }

    func batch(_ core: RuntimeCore, _ lease: Lease, token: Int64? = nil, cart: Int) -> PostgresQuery {
        let writes: PostgresQuery = """
            INSERT INTO \(unescaped: lease.key.name)_v1.carts (cart_id, items, total_cents, checked_out, events, written_by)
            VALUES (\("c\(cart)"), 1, 100, false, 1, 'by-hand')
            """
        let position = LogPosition(transactionID: lease.checkpoint.transactionID, globalPosition: lease.checkpoint.globalPosition + 1)
        return core.queries.singleStatementBatch(writes, lease.key, owner: lease.owner, token: token ?? lease.token, to: position,
                                                 applied: 1, state: "live", milliseconds: 60_000, asynchronousCommit: true)
    }

    @Test func theWritesCommitWithTheCheckpointAndNotAtAllWithoutTheLease() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryInOneStatement(CartSummaryProjection(name: f.name("carts")))
            let (core, lease) = try await leased(f, projection)
            let checkpoint = "SELECT checkpoint_position FROM \(f.runtimeSchema).projections WHERE name = '\(projection.name)'"
            let before = try await scalar(PostgresQuery(unsafeSQL: checkpoint), on: f.client)

            // A former holder (its token is behind): the statement fails with KL001, and writes nothing.
            await #expect(throws: PSQLError.self) {
                do {
                    try await f.client.withConnection { try await $0.run(batch(core, lease, token: lease.token - 1, cart: 900), logger: testLogger) }
                } catch let error as PSQLError {
                    #expect(error.serverInfo?[.sqlState] == leaseLostSQLState, "\(String(reflecting: error))")
                    #expect(error.serverInfo?[.message]?.contains(projection.name) == true)
                    throw error
                }
            }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(projection.name)_v1.carts WHERE cart_id = 'c900'"), on: f.client) == 0)
            #expect(try await scalar(PostgresQuery(unsafeSQL: checkpoint), on: f.client) == before)

            // The holder: both commit, in one statement, and the commit does not wait for the disk.
            let setting = try await f.client.withConnection { connection in
                try await connection.run(batch(core, lease, cart: 901), logger: testLogger)
                var value = ""
                for try await v in try await connection.query("SELECT current_setting('synchronous_commit')", logger: testLogger).decode(String.self) { value = v }
                return value
            }
            #expect(setting == "on", "the setting was local to the statement's own transaction")
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(projection.name)_v1.carts WHERE cart_id = 'c901'"), on: f.client) == 1)
            #expect(try await scalar(PostgresQuery(unsafeSQL: checkpoint), on: f.client) == before + 1)
            await lease.release(core: core)
        }
    }

    /// The runner maps the failure to a lost lease (it stops writing and tries to take the lease
    /// again), a rejected batch to the poison policy, as for any projection.
    @Test func aRunnerWithoutItsLeaseWritesNothingAndAPoisonEventIsDeadLettered() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryInOneStatement(CartSummaryProjection(name: f.name("carts"), poisonEventPolicy: .deadLetter))
            let (core, lease) = try await leased(f, projection)
            let runner = try ProjectionRunner(projection: projection, core: core)
            let events = try await f.store.readStream("cart-1", from: 1, limit: 1)
            var stale = lease
            stale = Lease(table: stale.table, key: stale.key, owner: stale.owner, token: stale.token - 1, checkpoint: stale.checkpoint)
            await #expect(throws: LeaseLost.self) {
                try await runner.applyInOneStatement(projection, events, through: events[0].position, lease: stale, state: "live")
            }

            // Poison: the runtime dead-letters it and moves on, through single-statement batches.
            let poison = try await f.store.append([CartEvents.added(cart: 2, sku: "POISON"), CartEvents.added(cart: 2)], to: "cart-2", expectedVersion: .noStream)
            await lease.release(core: core)
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: poison.lastPosition!, timeout: .seconds(30)) }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).dead_letters"), on: f.client) == 1)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT items FROM \(projection.name)_v1.carts WHERE cart_id = 'c2'"), on: f.client) == 1)
        }
    }
}
