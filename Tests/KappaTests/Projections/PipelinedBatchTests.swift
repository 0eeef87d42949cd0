import Foundation
import Kappa
import KappaFixtures
import KappaTesting
import NIOCore
import PostgresNIO
import Testing

@testable import KappaPostgres

/// Live batches through libpq's pipeline mode (``ProjectionRuntime/Configuration/pipelineConnectionString``):
/// one round trip a batch, whatever the handler runs; a failing statement rolls the batch back; a
/// handler that reads runs statement by statement; a killed connection loses nothing.
@Suite(.serialized) struct PipelinedBatchTests {
    @Test func aLiveBatchOfManyStatementsIsOneRoundTrip() async throws {
        try await withProjectionFixture { f in
            try await RoundTripCounter.withTestDatabase { relay in
                var configuration = f.configuration()
                configuration.pipelineConnectionString = relay.connectionString
                let projection = CartLinesProjection(name: f.name("lines"))
                let runtime = try f.runtime([projection], configuration: configuration)
                try await withRunning(runtime) {
                    let first = try await f.store.append([CartEvents.added(cart: 0)], to: "cart-0", expectedVersion: .noStream).lastPosition!
                    try await runtime.waitUntil(projection.name, hasPassed: first, timeout: .seconds(30))
                    relay.reset()
                    let before = runtime.pipelinedBatches
                    for cart in 1...5 {
                        // Three statements an event (the cart, its line, the cart's totals), two events a batch.
                        let position = try await f.store.append(
                            [CartEvents.added(cart: cart, sku: "A", quantity: 2, unitPrice: 150), CartEvents.added(cart: cart, sku: "B")],
                            to: StreamID("cart-\(cart)"), expectedVersion: .noStream
                        ).lastPosition!
                        try await runtime.waitUntil(projection.name, hasPassed: position, timeout: .seconds(30))
                    }
                    #expect(runtime.pipelinedBatches - before == 5)
                    #expect(relay.roundTrips == 5)
                }
                let carts = try await f.client.query(
                    PostgresQuery(
                        unsafeSQL: "SELECT count(*), sum(items)::int8, sum(total_cents)::int8 FROM \(projection.name)_v1.carts WHERE cart_id <> 'c0'"),
                    logger: testLogger
                ).collect().first!.decode((Int64, Int64, Int64).self)
                #expect(carts == (5, 15, 5 * 400))
            }
        }
    }

    /// A statement that fails in a pipelined batch, as it runs or as it is prepared, rolls back the
    /// whole batch (the handler's earlier statements included); the poison-event policy then finds
    /// the event, as statement by statement, and the statements prepared meanwhile serve on.
    @Test func aFailingStatementRollsTheBatchBackAndThePoisonEventIsFound() async throws {
        try await withProjectionFixture { f in
            var configuration = f.configuration()
            configuration.poisonEventPolicy = .deadLetter
            let projection = EventProjection(
                name: f.name("checked"), version: 1,
                setupSQL: "CREATE TABLE seen (id uuid PRIMARY KEY); CREATE TABLE quantities (id uuid PRIMARY KEY, quantity int CHECK (quantity > 0));"
            ) { event, context in
                let added = try PayloadDecoder().decode(CartEvents.ItemAdded.self, from: event.payload)
                try await context.execute("INSERT INTO \(unescaped: context.schema).seen VALUES (\(event.id))")
                if added.quantity == 0 {
                    // Fails as it is prepared (parse analysis), not as it runs.
                    try await context.execute("INSERT INTO \(unescaped: context.schema).no_such_table VALUES (\(event.id))")
                }
                try await context.execute("INSERT INTO \(unescaped: context.schema).quantities VALUES (\(event.id), \(added.quantity))")
            }
            let runtime = try f.runtime([projection], configuration: configuration)
            try await withRunning(runtime) {
                let position = try await f.store.append(
                    [
                        CartEvents.added(cart: 1, quantity: 1), CartEvents.added(cart: 1, quantity: -1), CartEvents.added(cart: 1, quantity: 3),
                        CartEvents.added(cart: 1, quantity: 0), CartEvents.added(cart: 1, quantity: 2),
                    ],
                    to: "cart-1", expectedVersion: .noStream
                ).lastPosition!
                try await runtime.waitUntil(projection.name, hasPassed: position, timeout: .seconds(30))
            }
            let schema = "\(projection.name)_v1"
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(schema).seen"), on: f.client) == 3)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(schema).quantities"), on: f.client) == 3)
            #expect(try await runtime.status().first { $0.name == projection.name }?.deadLetters == 2)
            #expect(runtime.pipelinedBatches >= 2)
        }
    }

    /// A pipelined batch whose lease has changed hands writes nothing: its checkpoint move fails
    /// (`lease_lost()`), the server skips the `COMMIT`, and the runner learns it lost the lease — no
    /// dead letter, no statement-by-statement retry.
    @Test func aFencedOutPipelinedBatchWritesNothing() async throws {
        try await withProjectionFixture { f in
            let projection = CartLinesProjection(name: f.name("fenced"))
            let (core, lease) = try await f.leasedByHand(projection)
            defer { core.pipeline?.close() }
            let key = lease.key
            let next = try await f.store.append([CartEvents.added(cart: 2, quantity: 5)], to: "cart-2", expectedVersion: .noStream)
            let events = try await f.store.readStream("cart-2", from: 1, limit: 1)
            let runner = try ProjectionRunner(projection: projection, core: core)
            let stale = Lease(table: lease.table, key: key, owner: lease.owner, token: lease.token - 1, checkpoint: lease.checkpoint)
            await #expect(throws: LeaseLost.self) {
                _ = try await runner.applyPipelined(events, through: next.lastPosition!, lease: stale, state: .live, on: try #require(core.pipeline))
            }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(projection.name)_v1.carts WHERE cart_id = 'c2'"), on: f.client) == 0)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).dead_letters"), on: f.client) == 0)
            // The holder's own batch goes through.
            #expect(try await runner.applyPipelined(events, through: next.lastPosition!, lease: lease, state: .live, on: try #require(core.pipeline)))
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT items FROM \(projection.name)_v1.carts WHERE cart_id = 'c2'"), on: f.client) == 5)
        }
    }

    /// A handler that reads through the connection cannot be pipelined: its batches run statement by
    /// statement, and every event is applied once.
    @Test func aHandlerThatReadsRunsStatementByStatement() async throws {
        try await withProjectionFixture { f in
            let projection = EventProjection(
                name: f.name("reading"), version: 1, setupSQL: "CREATE TABLE seen (id uuid PRIMARY KEY, before bigint NOT NULL)"
            ) { event, context in
                let rows = try await context.connection.query(
                    PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(context.schema).seen"), logger: context.logger
                ).collect()
                let before = try rows.first!.decode(Int64.self)
                try await context.execute("INSERT INTO \(unescaped: context.schema).seen VALUES (\(event.id), \(before))")
            }
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) {
                var last = LogPosition.start
                for cart in 1...4 {
                    last = try await f.store.append([CartEvents.added(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .noStream).lastPosition!
                }
                try await runtime.waitUntil(projection.name, hasPassed: last, timeout: .seconds(30))
            }
            // Each event saw those before it: applied in order, once each.
            let before = try await f.client.query(
                PostgresQuery(unsafeSQL: "SELECT array_agg(before ORDER BY before)::int8[] FROM \(projection.name)_v1.seen"), logger: testLogger
            ).collect().first!.decode([Int64].self)
            #expect(before == [0, 1, 2, 3])
            #expect(runtime.pipelinedBatches == 0)
            #expect(runtime.batchesCommitted >= 1)
        }
    }

    /// The runtime's libpq connections are killed (`pg_terminate_backend`) again and again while
    /// carts are appended: each batch commits whole or not at all, and the read model ends equal to
    /// one built without interruption.
    @Test func killedPipelineConnectionsLoseAndRepeatNothing() async throws {
        try await withProjectionFixture { f in
            let projection = CartLinesProjection(name: f.name("killed"))
            // Its own connections only: other suites' runtimes run beside it.
            let application = "kappa_killed_\(f.suffix)"
            var configuration = f.configuration(batchSize: 7)
            configuration.pipelineConnectionString! += " application_name=\(application)"
            let runtime = try f.runtime([projection], configuration: configuration)
            let last = try await CartEvents.seed(f.store, carts: 150, eventsPerCart: 8)
            // Killed along the catch-up (1,200 events in batches of 7), 25 times at most: each kill
            // costs the runner a backoff.
            let killed = try await withRunning(runtime) {
                let caughtUp = Locked(false)
                async let killed: Int64 = {
                    var killed: Int64 = 0
                    while !caughtUp.withLock({ $0 }) && killed < 25 {
                        killed += try await scalar(
                            "SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity WHERE application_name = \(application)",
                            on: f.client, retrying: false)
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    return killed
                }()
                do {
                    try await runtime.waitUntil(projection.name, hasPassed: last, timeout: .seconds(60))
                    caughtUp.withLock { $0 = true }
                } catch {
                    caughtUp.withLock { $0 = true }
                    _ = try? await killed
                    throw error
                }
                return try await killed
            }
            #expect(killed >= 3)
            #expect(runtime.pipelinedBatches > 0)
            let reference = CartLinesProjection(name: f.name("reference"))
            try await f.buildReference(reference, through: last)
            for table in ["carts", "lines"] {
                let columns = table == "carts" ? "cart_id, items, total_cents, checked_out, events" : "cart_id, sku, quantity"
                #expect(try await f.difference("\(projection.name)_v1.\(table)", "\(reference.name)_v1.\(table)", columns: columns) == 0)
            }
        }
    }

    /// A connection lost after its batch's `COMMIT` was sent leaves the runner not knowing whether
    /// the batch committed: whichever it was, the batch is applied once (the retry finds the
    /// checkpoint moved and goes on from it, or applies the batch), and the read model equals one
    /// built without interruption.
    @Test func aConnectionLostAfterItsCommitWasSentAppliesTheBatchOnce() async throws {
        try await withProjectionFixture { f in
            let projection = CartLinesProjection(name: f.name("cut"))
            let last = try await RoundTripCounter.withTestDatabase { relay in
                var configuration = f.configuration(batchSize: 5)
                configuration.pipelineConnectionString = relay.connectionString
                let runtime = try f.runtime([projection], configuration: configuration)
                return try await withRunning(runtime) {
                    let first = try await f.store.append([CartEvents.added(cart: 0)], to: "cart-0", expectedVersion: .noStream).lastPosition!
                    try await runtime.waitUntil(projection.name, hasPassed: first, timeout: .seconds(30))
                    relay.cutAfterCommit(6)
                    let last = try await CartEvents.seed(f.store, carts: 12, eventsPerCart: 6)
                    try await runtime.waitUntil(projection.name, hasPassed: last, timeout: .seconds(60))
                    #expect(relay.cutsLeft == 0, "\(relay.cutsLeft) of 6 cuts not made")
                    return last
                }
            }
            let reference = CartLinesProjection(name: f.name("reference"))
            try await f.buildReference(reference, through: last)
            for (table, columns) in [("carts", "cart_id, items, total_cents, checked_out, events"), ("lines", "cart_id, sku, quantity")] {
                #expect(try await f.difference("\(projection.name)_v1.\(table)", "\(reference.name)_v1.\(table)", columns: columns) == 0)
            }
        }
    }

    /// Every type the framework and the sample bind reaches the server through libpq as through postgres-nio.
    @Test func parametersReachTheServerAsPostgresNIOSendsThem() async throws {
        try await withProjectionFixture { f in
            let table = "\(f.runtimeSchema)_types"
            try await catalogChange(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE TABLE \(table) (via text, i int8, small int4, s text, u uuid, d timestamptz, b bool, x float8,
                            texts text[], numbers int8[], missing text, j json, bytes bytea)
                        """), on: f.client)
            let date = Date(timeIntervalSince1970: 1_765_000_000.123456)
            func insert(_ via: String) -> PostgresQuery {
                """
                INSERT INTO \(unescaped: table) VALUES (\(via), \(Int.min + 1), \(Int32(-7)), \("é ' \\ \" ✓"), \(UUID(uuidString: "6F9619FF-8B86-D011-B42D-00C04FC964FF")!),
                    \(date), \(true), \(0.1), \(["a", "", "c,d"]), \([Int64.max, 0]), \(String?.none), \(#"{"k": [1, 2]}"#)::json,
                    \(ByteBuffer(bytes: [0, 1, 255])))
                """
            }
            _ = try await f.client.query(insert("nio"), logger: testLogger)
            let connection = try await LibPQConnection.connect(TestDatabase.connectionString(for: TestDatabase.configuration()), applicationName: "kappa-test")
            try await connection.pipeline([try LibPQStatement(insert("libpq"))])
            let columns = "i, small, s, u, d, b, x, texts, numbers, missing, j::text, bytes"
            #expect(
                try await f.difference("(SELECT * FROM \(table) WHERE via = 'nio') a", "(SELECT * FROM \(table) WHERE via = 'libpq') b", columns: columns) == 0)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"), on: f.client) == 2)
        }
    }

    /// Statements are prepared once per connection, and stay usable after a batch that failed: the
    /// connection knows which it prepared (a statement prepared again under its name would fail).
    @Test func preparedStatementsOutliveAFailedBatch() async throws {
        try await withProjectionFixture { f in
            let table = "\(f.runtimeSchema)_prepared"
            try await catalogChange(PostgresQuery(unsafeSQL: "CREATE TABLE \(table) (n int PRIMARY KEY CHECK (n > 0))"), on: f.client)
            func statement(_ sql: String, _ n: Int) throws -> LibPQStatement {
                var binds = PostgresBindings()
                binds.append(Int32(n))
                return try LibPQStatement(PostgresQuery(unsafeSQL: sql, binds: binds))
            }
            let insert = "INSERT INTO \(table) VALUES ($1)", upsert = "\(insert) ON CONFLICT DO NOTHING", other = "\(insert) /* other */"
            let connection = try await LibPQConnection.connect(TestDatabase.connectionString(for: TestDatabase.configuration()), applicationName: "kappa-test")
            try await connection.pipeline([try statement(insert, 1)])
            // The upsert is prepared, then fails (the check): the batch rolls back, and the statement
            // after it is never prepared (the server skips it).
            await #expect(throws: PipelineFailure.self) {
                try await connection.pipeline([try statement(insert, 2), try statement(upsert, -1), try statement(other, 9)])
            }
            #expect(connection.isReusable)
            try await connection.pipeline([try statement(insert, 2), try statement(upsert, 3), try statement(other, 4)])
            let prepared = try await connection.value("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'kappa_pipeline_%'")
            #expect(prepared == "3") // each text prepared once
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(n)::int8 FROM \(table)"), on: f.client) == 10)
        }
    }

    /// A connection string that reaches another server than the read-model client is refused at start.
    @Test func aPipelineToAnotherDatabaseIsRefusedAtStart() async throws {
        try await withProjectionFixture { f in
            try await ThrowAwayCluster.with { cluster in
                var configuration = f.configuration()
                configuration.pipelineConnectionString = TestDatabase.connectionString(for: cluster.configuration())
                let runtime = try f.runtime([CartLinesProjection(name: f.name("elsewhere"))], configuration: configuration)
                let error = await #expect(throws: KappaPostgresError.self) { try await runtime.run() }
                #expect(error?.code == .invalidConfiguration)
                #expect(error?.description.contains("pipelineConnectionString") == true)
            }
        }
    }
}

/// A bulk rebuild through libpq: each batch of the rebuild, the partition's fenced checkpoint with
/// it, is one round trip too.
@Suite(.serialized) struct PipelinedRebuildTests {
    @Test func aRebuildSendsEachBatchInOneRoundTrip() async throws {
        try await withProjectionFixture { f in
            let seeded = try await CartEvents.seed(f.store, carts: 10, eventsPerCart: 8) // 90 events with the checkouts
            try await RoundTripCounter.withTestDatabase { relay in
                var configuration = f.configuration()
                configuration.pipelineConnectionString = relay.connectionString
                configuration.rebuildThreshold = 1
                configuration.rebuildBatchSize = 20
                let projection = CartLinesProjection(name: f.name("rebuilt"))
                let runtime = try f.runtime([projection], configuration: configuration)
                try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }
                // 5 batches of up to 20 events, each one round trip; the rest is the connection's start
                // and its check (a handful). Statement by statement a batch is some 50 round trips.
                #expect(runtime.pipelinedRebuildBatches == 5)
                #expect(relay.roundTrips >= 4 && relay.roundTrips <= 16, "\(relay.roundTrips) round trips")
            }
            let reference = CartLinesProjection(name: f.name("reference"))
            try await f.buildReference(reference, through: seeded)
            for (table, columns) in [("carts", "cart_id, items, total_cents, checked_out, events"), ("lines", "cart_id, sku, quantity")] {
                #expect(try await f.difference("\(f.name("rebuilt"))_v1.\(table)", "\(reference.name)_v1.\(table)", columns: columns) == 0)
            }
        }
    }
}
