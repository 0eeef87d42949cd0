import Foundation
import Kappa
import KappaFixtures
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

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
            let setting = try await core.database.withReadModelTransaction { connection in
                var before = "", after = "", idle = ""
                for try await value in try await connection.query("SELECT current_setting('synchronous_commit')", logger: testLogger).decode(String.self) {
                    before = value
                }
                try await lease.advance(to: lease.checkpoint, applied: 0, state: .live, on: connection, core: core)
                for try await (value, timeout) in try await connection.query(
                    "SELECT current_setting('synchronous_commit'), current_setting('idle_in_transaction_session_timeout')", logger: testLogger
                ).decode((String, String).self) {
                    (after, idle) = (value, timeout)
                }
                return (before, after, idle)
            }
            #expect(setting.0 == "on")
            #expect(setting.1 == (synchronous ? "on" : "off"))
            // Between the move and the COMMIT the moved row is locked: a holder paused there longer
            // than its lease has its session ended by the server, so another runner can take over.
            #expect(setting.2 == "2s", "the lease's duration (2 s here)")
            await lease.release(core: core)
        }
    }

    /// A holder paused between moving its checkpoint and its COMMIT (the moved row locked) keeps the
    /// lease only for the lease's duration: the server ends its idle session, and another runner takes
    /// the lease then — not once the holder wakes (here after 8 s).
    @Test func aHolderPausedBeforeItsCommitHoldsTheLeaseRowOnlyForTheLeaseDuration() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("carts"))
            let seeded = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }
            let key = LeaseKey(name: projection.name, version: 1)
            let paused = try RuntimeCore(log: f.store, readModels: f.client, notifier: nil, configuration: f.configuration(owner: "paused"), logger: testLogger)
            let other = try RuntimeCore(log: f.store, readModels: f.client, notifier: nil, configuration: f.configuration(owner: "other"), logger: testLogger)
            let lease = try #require(try await Lease.acquire(.projections, key, core: paused))
            let moved = Locked(false)
            let holder = Task {
                try await paused.database.withReadModelTransaction(watchdog: false) { connection in
                    try await lease.advance(to: lease.checkpoint, applied: 0, state: .live, on: connection, core: paused)
                    moved.withLock { $0 = true }
                    try await Task.sleep(for: .seconds(8)) // paused before the COMMIT
                }
            }
            defer { holder.cancel() }
            try await eventually("the holder moved its checkpoint") { moved.withLock { $0 } }
            let clock = ContinuousClock(), started = clock.now
            try await eventually("the other runner takes the lease", timeout: .seconds(20)) {
                try await Lease.acquire(.projections, key, core: other) != nil
            }
            let elapsed = clock.now - started
            #expect(elapsed < .seconds(5), "took over after \(elapsed) (the lease lasts 2 s; the holder slept 8 s)")
            _ = await holder.result
        }
    }
    /// A holder paused after its batch's first write, before its checkpoint move, keeps the rows it
    /// wrote locked only for the lease's duration: the idle bound is in force from the batch's
    /// `BEGIN` (set on the session), so the server ends the session and the next writer of those
    /// rows goes on then — not once the holder wakes (here after 8 s).
    @Test func aHolderPausedAfterItsFirstWriteHoldsItsRowsOnlyForTheLeaseDuration() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("carts"))
            let seeded = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }
            let paused = try RuntimeCore(log: f.store, readModels: f.client, notifier: nil, configuration: f.configuration(owner: "paused"), logger: testLogger)
            let touch = PostgresQuery(unsafeSQL: "UPDATE \(projection.name)_v1.carts SET events = events")
            let wrote = Locked<String?>(nil)
            let holder = Task {
                try await paused.database.withReadModelTransaction(watchdog: false) { connection in
                    var bound = ""
                    for try await value in try await connection.query("SELECT current_setting('idle_in_transaction_session_timeout')", logger: testLogger)
                        .decode(String.self)
                    {
                        bound = value
                    }
                    try await connection.run(touch, logger: testLogger)
                    wrote.withLock { $0 = bound }
                    try await Task.sleep(for: .seconds(8)) // paused before its checkpoint move
                }
            }
            defer { holder.cancel() }
            try await eventually("the holder wrote") { wrote.withLock { $0 } != nil }
            #expect(wrote.withLock { $0 } == "2s", "the lease's duration (2 s here), from the first statement")
            let clock = ContinuousClock(), started = clock.now
            try await f.client.query(touch, logger: testLogger) // waits for the holder's row locks
            let elapsed = clock.now - started
            #expect(elapsed < .seconds(5), "the rows were free after \(elapsed) (the lease lasts 2 s; the holder slept 8 s)")
            if case .success = await holder.result { Issue.record("the paused holder's transaction committed") }
        }
    }
}
