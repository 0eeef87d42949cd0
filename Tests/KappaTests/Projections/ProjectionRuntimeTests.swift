import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

@Suite("Projection runtime", .serialized)
struct ProjectionRuntimeTests {
    /// How a batch reaches the server.
    enum BatchPath: String, CaseIterable, Sendable {
        /// `BEGIN`, the handler's statements, the checkpoint move as a prepared statement (the default), `COMMIT`.
        case prepared
        /// The same with a plain checkpoint statement.
        case plain
        /// A ``SingleStatementProjection``: the writes and the checkpoint move in one statement.
        case singleStatement
        /// The handler's statements queued and sent with the checkpoint move in one round trip (libpq).
        case pipelined
    }

    @Test(arguments: BatchPath.allCases) func catchesUpThenFollowsLiveExactlyOnce(path: BatchPath) async throws {
        try await withProjectionFixture { f in
            let seeded = try await CartEvents.seed(f.store, carts: 40, eventsPerCart: 25)
            let base = CartSummaryProjection(name: f.name("carts"))
            let projection: any Projection = path == .singleStatement ? CartSummaryInOneStatement(base) : base
            let table = "\(projection.name)_v1.carts"
            var configuration = f.configuration(pipelined: path == .pipelined)
            configuration.preparedStatements = path != .plain
            let runtime = try f.runtime([projection], configuration: configuration)
            let last = try await withRunning(runtime) {
                try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30))
                #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(events)::int8 FROM \(table)"), on: f.client) == 1_000)
                // Live: an append in this process wakes the runner at once — once the log's horizon has
                // passed it (suites running beside this one hold the horizon at times: awaited first).
                let result = try await f.store.append([CartEvents.added(cart: 7, quantity: 5, unitPrice: 10)], to: "cart-7", expectedVersion: .any)
                try await eventually("the horizon passed the append") { try await f.store.head() >= result.lastPosition! }
                let elapsed = try await ContinuousClock().measure {
                    try await runtime.waitUntil(projection.name, hasPassed: result.lastPosition!, timeout: .seconds(5))
                }
                // Usually a few ms; a runner held back rechecks at most every 100 ms, on the log's own
                // horizon after 100 ms held (HorizonRecheck), so anything near a second is a lost wake-up.
                #expect(elapsed < .seconds(3), "live wake-up took \(elapsed)")
                let last = try await f.store.readStream("cart-7", from: 1, limit: 100).last!.position
                let status = try #require(try await runtime.status().first { $0.name == projection.name })
                #expect(status.state == .live)
                #expect(status.lagEvents == 0)
                #expect(status.eventsApplied == 1_001)
                #expect(status.leaseOwner == "test")
                // The path taken: the results are the same either way.
                #expect((runtime.singleStatementBatches > 0) == (path == .singleStatement), "\(runtime.singleStatementBatches) of \(runtime.batchesCommitted)")
                return last
            }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(events)::int8 FROM \(table)"), on: f.client) == 1_001)
            // Graceful shutdown released the lease.
            let owners = try await scalar(PostgresQuery(unsafeSQL: "SELECT count(lease_owner) FROM \(f.runtimeSchema).projections"), on: f.client)
            #expect(owners == 0)
            // So the version reads as stopped, from Swift and from the SQL view, its checkpoint kept.
            let stopped = try #require(try await runtime.status().first { $0.name == projection.name })
            #expect(stopped.state == .stopped)
            #expect(stopped.checkpoint == last)
            #expect(try await f.versions([projection]).versions(of: projection.name).map(\.state) == [.stopped])
            #expect(
                try await scalar(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT count(*) FROM \(f.runtimeSchema).projection_status WHERE name = '\(projection.name)' AND state = 'stopped'
                            """), on: f.client) == 1)
            // And the read model matches an uninterrupted rebuild.
            let reference = CartSummaryProjection(name: f.name("ref"))
            try await f.buildReference(reference, through: last)
            #expect(try await f.difference(table, "\(reference.name)_v1.carts") == 0)
        }
    }

    @Test func readYourWritesWaitsAndTimesOutCleanly() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("carts"))
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) {
                let result = try await f.store.append([CartEvents.added(cart: 1, quantity: 3, unitPrice: 7)], to: "cart-1", expectedVersion: .noStream)
                try await runtime.waitUntil(projection.name, hasPassed: result.lastPosition!, timeout: .seconds(30))
                let total = try await scalar(PostgresQuery(unsafeSQL: "SELECT total_cents FROM \(projection.name)_v1.carts WHERE cart_id = 'c1'"), on: f.client)
                #expect(total == 21)
            }
            // Nobody runs the projection now: a wait for a later position times out, cleanly.
            let later = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .any).lastPosition!
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: ProjectionError.self) {
                try await runtime.waitUntil(projection.name, hasPassed: later, timeout: .milliseconds(300))
            }
            #expect(error?.code == .timedOut)
            #expect(clock.now - start >= .milliseconds(300))
            #expect(clock.now - start < .seconds(3))
            let unknown = await #expect(throws: ProjectionError.self) { try await runtime.waitUntil("nope", hasPassed: later) }
            #expect(unknown?.code == .unknownProjection)
        }
    }

    /// While this runtime's runner holds the lease, waits are answered from its commits in memory:
    /// one that its runner is too slow for times out on time, and a cancelled one ends at once.
    @Test func aWaitOnThisRuntimesOwnRunnerTimesOutAndCancelsCleanly() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("carts"), delayPerBatch: .seconds(2))
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) {
                try await eventually("the runner holds the lease") {
                    try await runtime.status().first { $0.name == projection.name }?.leaseOwner == "test"
                }
                let appended = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
                let clock = ContinuousClock()
                let start = clock.now
                let error = await #expect(throws: ProjectionError.self) {
                    try await runtime.waitUntil(projection.name, hasPassed: appended, timeout: .milliseconds(300))
                }
                #expect(error?.code == .timedOut)
                #expect(clock.now - start >= .milliseconds(300) && clock.now - start < .seconds(2), "\(clock.now - start)")
                let cancelled = Task { try await runtime.waitUntil(projection.name, hasPassed: appended, timeout: .seconds(60)) }
                let cancelStart = clock.now
                cancelled.cancel()
                await #expect(throws: CancellationError.self) { try await cancelled.value }
                #expect(clock.now - cancelStart < .seconds(2))
                // And the slow batch, once committed, ends a patient wait.
                try await runtime.waitUntil(projection.name, hasPassed: appended, timeout: .seconds(30))
            }
        }
    }

    @Test func aPoisonEventStopsTheProjectionWhereItIs() async throws {
        try await withProjectionFixture { f in
            try await CartEvents.seed(f.store, carts: 5, eventsPerCart: 10)
            let poison = try await f.store.append([CartEvents.added(cart: 99, sku: "POISON")], to: "cart-99", expectedVersion: .any)
            try await CartEvents.seed(f.store, carts: 3, eventsPerCart: 10)
            let projection = CartSummaryProjection(name: f.name("carts"))
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) {
                try await eventually("the projection fails") {
                    try await runtime.status().first { $0.name == projection.name }?.state == .failed
                }
            }
            let status = try #require(try await runtime.status().first { $0.name == projection.name })
            #expect(status.failedPosition == poison.positions[0].globalPosition)
            #expect(status.failedEventType == "ItemAddedToCart")
            #expect(status.failedError?.contains("POISON") == true)
            #expect(status.failedError?.contains(projection.name) == true, "the error names the projection")
            #expect(status.checkpoint < poison.positions[0])
            #expect(status.eventsApplied == 50, "everything before the poison event, nothing after")
        }
    }

    @Test func deadLetteredEventsAreRecordedSkippedAndRetried() async throws {
        try await withProjectionFixture { f in
            try await CartEvents.seed(f.store, carts: 5, eventsPerCart: 10)
            _ = try await f.store.append([CartEvents.added(cart: 99, sku: "POISON", quantity: 2, unitPrice: 50)], to: "cart-99", expectedVersion: .any)
            let seeded = try await CartEvents.seed(f.store, carts: 3, eventsPerCart: 10)
            let name = f.name("carts")
            let table = "\(name)_v1.carts"
            let projection = CartSummaryProjection(name: name, poisonEventPolicy: .deadLetter)
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) {
                try await runtime.waitUntil(name, hasPassed: seeded, timeout: .seconds(30))
            }
            let status = try #require(try await runtime.status().first { $0.name == name })
            #expect(status.deadLetters == 1)
            #expect(status.state != .failed)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table) WHERE cart_id = 'c99'"), on: f.client) == 0)
            // Retrying with the handler still refusing keeps the letter, counting the attempt.
            #expect(try await runtime.retryDeadLetters(projection: name, version: 1) == 0)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT attempts FROM \(f.runtimeSchema).dead_letters"), on: f.client) == 2)
            // Once the handler accepts it, the retry applies it and resolves the letter — once, though
            // two retries (two processes' runtimes) run at the same time.
            let fixed = try f.runtime([CartSummaryProjection(name: name, poisonEventPolicy: .deadLetter, poisonSKU: nil)])
            let alsoFixed = try f.runtime([CartSummaryProjection(name: name, poisonEventPolicy: .deadLetter, poisonSKU: nil)])
            async let first = fixed.retryDeadLetters(projection: name, version: 1)
            async let second = alsoFixed.retryDeadLetters(projection: name, version: 1)
            #expect(try await [first, second].sorted() == [0, 1])
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT total_cents FROM \(table) WHERE cart_id = 'c99'"), on: f.client) == 100)
            #expect(try await fixed.status().first { $0.name == name }?.deadLetters == 0)
        }
    }

    @Test func aConnectionKilledMidBatchLosesAndDuplicatesNothing() async throws {
        try await withProjectionFixture { f in
            let seeded = try await CartEvents.seed(f.store, carts: 30, eventsPerCart: 20)
            let projection = CartSummaryProjection(name: f.name("carts"), delayPerBatch: .milliseconds(150))
            let runtime = try f.runtime([projection])
            // The killing is done from a client of its own: the runtime's pool can hand a connection
            // just killed to the next caller (the runtime guards against that; a test query would hang).
            try await TestDatabase.withClient(logger: testLogger) { control in
                try await withRunning(runtime) {
                    var killed: Int64 = 0
                    var victims: [Int32] = []
                    for _ in 0..<2 {
                        // The runner's backend while it sits inside a batch's transaction, not killed before.
                        let inBatch: PostgresQuery = """
                            SELECT coalesce(max(pid), 0)::int8 FROM pg_stat_activity
                            WHERE query LIKE \("SELECT pg_sleep% \(projection.name) %") AND state = 'active' AND pid <> ALL(\(victims))
                            """
                        let found = Locked<Int32>(0)
                        try await eventually("a batch in flight") {
                            let pid = Int32(try await scalar(inBatch, on: control))
                            found.withLock { $0 = pid }
                            return pid > 0
                        }
                        let pid = found.withLock { $0 }
                        victims.append(pid)
                        killed += try await scalar("SELECT pg_terminate_backend(\(pid))::int::int8", on: control, retrying: false)
                    }
                    #expect(killed == 2)
                    try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(60))
                }
            }
            let reference = CartSummaryProjection(name: f.name("ref"))
            try await f.buildReference(reference, through: seeded)
            #expect(try await f.difference("\(projection.name)_v1.carts", "\(reference.name)_v1.carts") == 0)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(events)::int8 FROM \(projection.name)_v1.carts"), on: f.client) == 600)
        }
    }

    @Test func badProjectionNamesAndDuplicatesAreRefused() async throws {
        try await withProjectionFixture { f in
            for bad in ["Carts", "1carts", "carts-v2", String(repeating: "c", count: 41), ""] {
                #expect(throws: KappaPostgresError.self) { try f.runtime([CartSummaryProjection(name: bad)]) }
            }
            #expect(throws: KappaPostgresError.self) { try f.runtime([CartSummaryProjection(name: "carts", version: 0)]) }
            let duplicate = #expect(throws: ProjectionError.self) {
                try f.runtime([CartSummaryProjection(name: "carts"), CartSummaryProjection(name: "carts")])
            }
            #expect(duplicate?.code == .duplicateProjection)
        }
    }

    /// `indexSQL` runs as a version catches up; when it fails, the version fails, its status naming the
    /// error, instead of the runner trying again every few seconds while the status says live.
    @Test func aFailingIndexSQLFailsTheVersionWithItsError() async throws {
        struct BadIndex: Projection {
            let name: String
            var version: Int { 1 }
            var setupSQL: String { "CREATE TABLE seen (id uuid PRIMARY KEY);" }
            var indexSQL: String { "CREATE INDEX seen_x ON seen (no_such_column);" }
            func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {}
        }
        try await withProjectionFixture { f in
            _ = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream)
            let projection = BadIndex(name: f.name("indexed"))
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) {
                try await eventually("the version failed", timeout: .seconds(10)) {
                    try await runtime.status().first { $0.name == projection.name }?.state == .failed
                }
                let status = try #require(try await runtime.status().first { $0.name == projection.name })
                #expect(status.failedError?.contains("indexSQL failed") == true, "\(status.failedError ?? "")")
                #expect(status.failedError?.contains("no_such_column") == true)
                #expect(status.failedPosition == nil)
            }
        }
    }

    @Test func aBrokenSetupIsRefusedAtStartNamingTheProjection() async throws {
        try await withProjectionFixture { f in
            let broken = EventProjection(name: f.name("broken"), version: 1, setupSQL: "CREATE TABLE t (id nosuchtype);") { _, _ in }
            let error = await #expect(throws: ProjectionError.self) { try await f.runtime([broken]).run() }
            #expect(error?.code == .setupFailed)
            #expect(error?.projection == broken.name)
        }
    }
}
