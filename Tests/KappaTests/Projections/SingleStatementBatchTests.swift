import Foundation
import Kappa
import KappaFixtures
import PostgresNIO
import Testing

@testable import KappaPostgres

/// A ``SingleStatementProjection``'s live batch: its writes and the fenced checkpoint move in one
/// statement, which commits both or neither.
@Suite("Single-statement batches", .serialized)
struct SingleStatementBatchTests {

    func batch(_ core: RuntimeCore, _ lease: Lease, token: Int64? = nil, cart: Int) -> PostgresQuery {
        let writes: PostgresQuery = """
            INSERT INTO \(unescaped: lease.key.name)_v1.carts (cart_id, items, total_cents, checked_out, events, written_by)
            VALUES (\("c\(cart)"), 1, 100, false, 1, 'by-hand')
            """
        let position = LogPosition(transactionID: lease.checkpoint.transactionID, globalPosition: lease.checkpoint.globalPosition + 1)
        let stale = Lease(table: lease.table, key: lease.key, owner: lease.owner, token: token ?? lease.token, checkpoint: lease.checkpoint)
        return core.queries.singleStatementBatch(writes, stale.move(to: position, applied: 1, state: .live, core: core), asynchronousCommit: true)
    }

    @Test func theWritesCommitWithTheCheckpointAndNotAtAllWithoutTheLease() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryInOneStatement(CartSummaryProjection(name: f.name("carts")))
            let (core, lease) = try await f.leasedByHand(projection)
            let checkpoint = "SELECT checkpoint_position FROM \(f.runtimeSchema).projections WHERE name = '\(projection.name)'"
            let before = try await scalar(PostgresQuery(unsafeSQL: checkpoint), on: f.client)

            // A former holder (its token is behind): the statement fails with KL001, and writes nothing.
            await #expect(throws: PSQLError.self) {
                do {
                    try await f.client.withConnection { try await $0.run(batch(core, lease, token: lease.token - 1, cart: 900), logger: testLogger) }
                } catch let error as PSQLError {
                    #expect(error.sqlState == .kappaLeaseLost, "\(String(reflecting: error))")
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
                for try await v in try await connection.query("SELECT current_setting('synchronous_commit')", logger: testLogger).decode(String.self) {
                    value = v
                }
                return value
            }
            #expect(setting == "on", "the setting was local to the statement's own transaction")
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(projection.name)_v1.carts WHERE cart_id = 'c901'"), on: f.client) == 1)
            #expect(try await scalar(PostgresQuery(unsafeSQL: checkpoint), on: f.client) == before + 1)

            // The same batch again (a statement the runtime gave up on, which the server then ran to
            // the end, beside its retry): the checkpoint is no longer where it began, so it fails too.
            await #expect(throws: PSQLError.self) {
                try await f.client.withConnection { try await $0.run(batch(core, lease, cart: 902), logger: testLogger) }
            }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(projection.name)_v1.carts WHERE cart_id = 'c902'"), on: f.client) == 0)
            #expect(try await scalar(PostgresQuery(unsafeSQL: checkpoint), on: f.client) == before + 1)
            await lease.release(core: core)
        }
    }

    /// A batch's transaction whose checkpoint move starts from an old checkpoint rolls back, on
    /// each path (the same fence as the single statement's).
    @Test(arguments: [true, false]) func aCheckpointMoveFromAnOldCheckpointIsRefused(prepared: Bool) async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("carts"))
            let (core, lease) = try await f.leasedByHand(projection, prepared: prepared)
            let next = LogPosition(transactionID: lease.checkpoint.transactionID, globalPosition: lease.checkpoint.globalPosition + 1)
            try await core.database.withReadModelTransaction { connection in
                try await lease.advance(to: next, applied: 0, state: .live, on: connection, core: core)
            }
            // `lease` still says the old checkpoint: a second move from it is a replayed batch.
            await #expect(throws: LeaseLost.self) {
                try await core.database.withReadModelTransaction { connection in
                    try await lease.advance(to: next, applied: 0, state: .live, on: connection, core: core)
                }
            }
            await lease.release(core: core)
        }
    }

    /// A statement that cannot stand as a `WITH` query is sent in a transaction instead, or (when it
    /// fails only as one) applied event by event in transactions — never dead-lettered for its shape.
    @Test func statementsThatCannotBeEmbeddedAreAppliedInTransactions() async throws {
        #expect(ProjectionRunner.embeddable("  -- a comment\n  insert into t values (1);  \n") == "  -- a comment\n  insert into t values (1)")
        #expect(ProjectionRunner.embeddable("UPDATE t SET a = 1") == "UPDATE t SET a = 1")
        #expect(ProjectionRunner.embeddable("SELECT apply_batch($1)") == nil)
        #expect(ProjectionRunner.embeddable("") == nil)
        try await withProjectionFixture { f in
            let projection = CountsWithOwnWith(name: f.name("counts"))
            let seeded = try await CartEvents.seed(f.store, carts: 3, eventsPerCart: 4)
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(n)::int8 FROM \(projection.name)_v1.counts"), on: f.client) == 12)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).dead_letters"), on: f.client) == 0)
        }
    }

    /// The runner maps the failure to a lost lease (it stops writing and tries to take the lease
    /// again), a rejected batch to the poison policy, as for any projection.
    @Test func aRunnerWithoutItsLeaseWritesNothingAndAPoisonEventIsDeadLettered() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryInOneStatement(CartSummaryProjection(name: f.name("carts"), poisonEventPolicy: .deadLetter))
            let (core, lease) = try await f.leasedByHand(projection)
            let runner = try ProjectionRunner(projection: projection, core: core)
            let events = try await f.store.readStream("cart-1", from: 1, limit: 1)
            var stale = lease
            stale = Lease(table: stale.table, key: stale.key, owner: stale.owner, token: stale.token - 1, checkpoint: stale.checkpoint)
            await #expect(throws: LeaseLost.self) {
                try await runner.applyInOneStatement(projection, events, through: events[0].position, lease: stale, state: .live)
            }

            // Poison: the runtime dead-letters it and moves on, through single-statement batches.
            let poison = try await f.store.append(
                [CartEvents.added(cart: 2, sku: "POISON"), CartEvents.added(cart: 2)], to: "cart-2", expectedVersion: .noStream)
            await lease.release(core: core)
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: poison.lastPosition!, timeout: .seconds(30)) }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).dead_letters"), on: f.client) == 1)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT items FROM \(projection.name)_v1.carts WHERE cart_id = 'c2'"), on: f.client) == 1)
        }
    }
}

/// Counts events by type with a statement that has a data-modifying `WITH` of its own: fine in a
/// transaction, refused by PostgreSQL as a `WITH` query of another statement.
struct CountsWithOwnWith: SingleStatementProjection, PoisonPolicyProviding {
    let name: String
    let version = 1
    var poisonEventPolicy: PoisonEventPolicy { .deadLetter }
    var setupSQL: String { "CREATE TABLE counts (event_type text PRIMARY KEY, n bigint NOT NULL)" }

    func statement(for events: [RecordedEvent], schema: String) throws -> PostgresQuery? {
        let types = events.map(\.eventType)
        return """
            WITH added AS (
                INSERT INTO \(unescaped: schema).counts AS c SELECT t, count(*) FROM unnest(\(types)::text[]) AS u(t) GROUP BY t
                ON CONFLICT (event_type) DO UPDATE SET n = c.n + excluded.n RETURNING 1)
            SELECT count(*) FROM added
            """
    }
}

extension ProjectionFixture {
    /// Sets up `projection` through a runtime run (its schema, tables and runtime row; an event of
    /// cart 1 appended and applied), and returns a core of another owner with the lease taken, ready
    /// to send batches by hand.
    func leasedByHand(_ projection: any Projection, synchronous: Bool = false, prepared: Bool = true) async throws -> (RuntimeCore, Lease) {
        let seeded = try await store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
        let runtime = try self.runtime([projection])
        try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }
        var configuration = self.configuration(owner: "by-hand")
        configuration.synchronousReadModelCommits = synchronous
        configuration.preparedStatements = prepared
        let core = try RuntimeCore(log: store, readModels: client, notifier: nil, configuration: configuration, logger: testLogger)
        let lease = try #require(try await Lease.acquire(.projections, LeaseKey(name: projection.name, version: 1), core: core))
        return (core, lease)
    }
}
