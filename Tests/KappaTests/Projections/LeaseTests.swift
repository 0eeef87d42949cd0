import Foundation
import Kappa
import KappaFixtures
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

/// Leases are held by a runtime instance, not by an owner name, and every acquisition is fenced
/// with a token of its own.
@Suite("Leases", .serialized)
struct LeaseTests {
    @Test func twoRuntimesWithTheSameOwnerNeverShareALease() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("carts"))
            let seeded = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }
            let key = LeaseKey(name: projection.name, version: 1)
            let first = try RuntimeCore(
                log: f.store, readModels: f.client, notifier: nil,
                configuration: f.configuration(owner: "same", lease: .seconds(60)), logger: testLogger)
            let second = try RuntimeCore(
                log: f.store, readModels: f.client, notifier: nil,
                configuration: f.configuration(owner: "same", lease: .seconds(60)), logger: testLogger)
            let held = try #require(try await Lease.acquire(.projections, key, core: first))
            #expect(try await Lease.acquire(.projections, key, core: second) == nil, "another process with the same owner name")
            // The holder taking it again (after a fault) gets a new token: the earlier holding is fenced off.
            let again = try #require(try await Lease.acquire(.projections, key, core: first))
            #expect(again.token > held.token)
            await #expect(throws: LeaseLost.self) { try await held.renew(state: .live, core: first) }
            try await again.renew(state: .live, core: first)
            await again.release(core: first)
            let taken = try #require(try await Lease.acquire(.projections, key, core: second))
            #expect(taken.token > again.token)
        }
    }

    /// A batch that runs longer than the lease keeps it: a second runtime waiting beside it never
    /// takes the lease while the batch runs (the token it was taken with stays), and each event is applied once.
    @Test func aBatchLongerThanTheLeaseKeepsIt() async throws {
        try await withProjectionFixture { f in
            // A batch of 2.5 leases; renewed every third of one, so a renewal may run up to 1.3 s late
            // (a loaded machine, a busy pool) before the lease would lapse.
            let projection = CartSummaryProjection(name: f.name("carts"), delayPerBatch: .seconds(5))
            func configuration(_ owner: String) -> ProjectionRuntime.Configuration {
                var configuration = f.configuration(owner: owner, lease: .seconds(2))
                configuration.transactionTimeout = .seconds(30) // the watchdog lets the long batch run
                return configuration
            }
            let first = try f.runtime([projection], configuration: configuration("first"))
            let second = try f.runtime([projection], configuration: configuration("second"))
            let token: PostgresQuery = "SELECT lease_token FROM \(unescaped: f.runtimeSchema).projections WHERE name = \(projection.name)"
            try await withRunning(first) {
                // Built and serving first (an empty log), so that the batch below is all that runs.
                try await eventually("the version is live") { try await first.status().first { $0.name == projection.name }?.state == .live }
                let seeded = try await CartEvents.seed(f.store, carts: 2, eventsPerCart: 3)
                try await eventually("the first batch is in flight") {
                    try await scalar(
                        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE \("SELECT pg_sleep% \(projection.name) %") AND state = 'active'",
                        on: f.client) == 1
                }
                let taken = try await scalar(token, on: f.client)
                try await withRunning(second) {
                    try await first.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30))
                    #expect(try await scalar(token, on: f.client) == taken, "the lease changed hands during the batch")
                    // The batch's checkpoint move extended the lease from its own time, not its transaction's start.
                    #expect(
                        try await scalar(
                            """
                            SELECT (lease_expires_at > clock_timestamp())::int::int8 FROM \(unescaped: f.runtimeSchema).projections
                            WHERE name = \(projection.name)
                            """, on: f.client) == 1, "the lease was left expired by the batch's commit")
                }
            }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(events)::int8 FROM \(projection.name)_v1.carts"), on: f.client) == 6)
        }
    }

    /// A dead-letter retry is fenced like a batch: while another process's runtime holds the version's
    /// lease, a retry from here is refused and applies nothing.
    @Test func aDeadLetterRetryIsRefusedWhileAnotherProcessHoldsTheLease() async throws {
        try await withProjectionFixture { f in
            let poisoned = try await f.store.append(
                [CartEvents.added(cart: 99, sku: "POISON", quantity: 2, unitPrice: 50)],
                to: "cart-99", expectedVersion: .noStream
            ).lastPosition!
            let name = f.name("carts")
            let holder = try f.runtime(
                [CartSummaryProjection(name: name, poisonEventPolicy: .deadLetter)],
                configuration: f.configuration(owner: "holder", lease: .seconds(60)))
            let fixed = try f.runtime(
                [CartSummaryProjection(name: name, poisonEventPolicy: .deadLetter, poisonSKU: nil)],
                configuration: f.configuration(owner: "elsewhere"))
            try await withRunning(holder) {
                try await holder.waitUntil(name, hasPassed: poisoned, timeout: .seconds(30))
                let error = await #expect(throws: ProjectionError.self) { try await fixed.retryDeadLetters(projection: name, version: 1) }
                #expect(error?.code == .rebuildInProgress)
                #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(name)_v1.carts WHERE cart_id = 'c99'"), on: f.client) == 0)
                #expect(try await holder.status().first { $0.name == name }?.deadLetters == 1)
            }
            // Once the holder has stopped (its lease released), the retry goes through.
            #expect(try await fixed.retryDeadLetters(projection: name, version: 1) == 1)
        }
    }
}

/// Faults that pass are retried, not taken for a poison event.
@Suite("Fault classification", .serialized)
struct FaultClassificationTests {
    /// A statement cancelled by `statement_timeout` (SQLSTATE 57014) or a lock not granted within
    /// `lock_timeout` (55P03) is retried with backoff; the event is applied once, no letter written.
    @Test(arguments: ["SET LOCAL statement_timeout = '20ms'; SELECT pg_sleep(5)", "SET LOCAL lock_timeout = '20ms'; LOCK TABLE held"])
    func aTimedOutStatementIsRetriedNotDeadLettered(_ failing: String) async throws {
        try await withProjectionFixture { f in
            let name = f.name("timeouts")
            let attempts = Locked(0)
            let projection = EventProjection(
                name: name, version: 1,
                setupSQL: "CREATE TABLE seen (id uuid PRIMARY KEY); CREATE TABLE held (id int);"
            ) { event, context in
                if attempts.withLock({
                    $0 += 1
                    return $0
                }) == 1 {
                    for statement in failing.split(separator: ";") {
                        try await context.execute(PostgresQuery(unsafeSQL: statement.replacingOccurrences(of: "held", with: "\(context.schema).held")))
                    }
                }
                try await context.execute("INSERT INTO \(unescaped: context.schema).seen VALUES (\(event.id))")
            }
            var configuration = f.configuration()
            configuration.poisonEventPolicy = .deadLetter
            let runtime = try f.runtime([projection], configuration: configuration)
            // The lock the second case waits for is held by another session from before the event is
            // appended until the first attempt gave up.
            try await TestDatabase.withClient(logger: testLogger) { other in
                try await withRunning(runtime) {
                    let position = try await other.withConnection { connection in
                        // Live: built, its tables analysed (ANALYZE would wait for the lock below).
                        try await eventually("the version is live") {
                            try await runtime.status().first { $0.name == name }?.state == .live
                        }
                        try await connection.query("BEGIN", logger: testLogger)
                        // SHARE, not ACCESS EXCLUSIVE: that lock takes a transaction id, which would hold
                        // every follower back until it ends (the append below included).
                        try await connection.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(name)_v1.held IN SHARE MODE"), logger: testLogger)
                        let position = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
                        try await eventually("the first attempt failed") { attempts.withLock { $0 } >= 2 }
                        try await connection.query("COMMIT", logger: testLogger)
                        return position
                    }
                    try await runtime.waitUntil(name, hasPassed: position, timeout: .seconds(30))
                }
            }
            #expect(try await runtime.status().first { $0.name == name }?.deadLetters == 0)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(name)_v1.seen"), on: f.client) == 1)
        }
    }
}
