import Foundation
import Kappa
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

/// A running event store appends on connections it holds instead of leasing one from the pool per
/// append; a held connection the server kills is replaced, and appends go on.
@Suite("Held append connections", .serialized)
struct HeldConnectionTests {
    /// A client of its own, named so that its sessions can be found, with a store that runs beside `body`.
    func withRunningStore(
        checkInterval: Duration = .seconds(30), _ body: @Sendable (PostgresEventStore, PostgresClient, String) async throws -> Void
    ) async throws {
        try await TestDatabase.withSchema(prefix: "kappa_test") { admin, schema in
            let application = "kappa-held-\(UUID().uuidString.prefix(8).lowercased())"
            var configuration = TestDatabase.configuration()
            configuration.options.additionalStartupParameters = [("application_name", application)]
            try await TestDatabase.withClient(configuration: configuration) { client in
                var storeConfiguration = PostgresEventStore.Configuration(schema: schema)
                storeConfiguration.heldConnectionCheckInterval = checkInterval
                let store = try PostgresEventStore(client: client, configuration: storeConfiguration, logger: testLogger)
                try await store.migrate()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await store.run() }
                    defer { group.cancelAll() }
                    try await eventually("the store holds its connections") { store.heldConnections.count == 2 }
                    try await body(store, admin, application)
                }
                // Stopped: it gives its connections back to the pool.
                #expect(store.heldConnections.count == 0)
            }
        }
    }

    @Test func aRunningStoreAppendsOnTheConnectionsItHolds() async throws {
        try await withRunningStore { store, _, _ in
            let before = store.heldConnections.borrows.load(ordering: .relaxed)
            for n in 1...10 {
                _ = try await store.append(try deposits(1, startingAt: n), to: "account-1", expectedVersion: .exact(Int64(n - 1)))
            }
            #expect(store.heldConnections.borrows.load(ordering: .relaxed) - before == 10)
            #expect(try await store.readStream("account-1", from: 1, limit: 100).count == 10)
        }
    }

    @Test func aHeldConnectionTheServerKillsIsReplacedAndAppendsGoOn() async throws {
        try await withRunningStore { store, admin, application in
            let killed = try await scalar(
                "SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity WHERE application_name = \(application)", on: admin)
            #expect(killed >= 2)
            try await eventually("both held connections were replaced", timeout: .seconds(10)) {
                store.heldConnections.holds.load(ordering: .relaxed) >= 4 && store.heldConnections.count == 2
            }
            // The pool can hand the store a connection whose backend is still exiting: an append on it
            // fails with connectionLost and, sent again, finds a live one (the same events, written once).
            let before = store.heldConnections.borrows.load(ordering: .relaxed)
            for n in 1...10 {
                let events = try deposits(1, startingAt: n)
                for attempt in 1...3 {
                    do {
                        _ = try await store.append(events, to: "account-2", expectedVersion: .exact(Int64(n - 1)))
                        break
                    } catch let error as EventStoreError where error.code == .connectionLost && attempt < 3 {}
                }
            }
            #expect(store.heldConnections.borrows.load(ordering: .relaxed) - before >= 10)
            #expect(try await store.readStream("account-2", from: 1, limit: 100).count == 10)
        }
    }

    /// Idle held connections are checked (the pool would check them only if it had them idle), and
    /// stay held and usable.
    @Test func idleHeldConnectionsAreChecked() async throws {
        try await withRunningStore(checkInterval: .milliseconds(20)) { store, _, _ in
            try await eventually("both connections were checked a few times") { store.heldConnections.pings.load(ordering: .relaxed) >= 6 }
            #expect(store.heldConnections.holds.load(ordering: .relaxed) == 2, "none was closed")
            // (An append that meets both in a check leases from the pool instead.)
            #expect(try await store.append(try deposits(1), to: "account-4", expectedVersion: .noStream).streamVersion == 1)
        }
    }

    /// A store told to stop while an append is on one of its connections lets that connection go only
    /// once the append is done: the pool never hands out a connection an append is still using.
    @Test func aStoppingStoreWaitsForTheAppendOnItsConnection() async throws {
        try await TestDatabase.withSchema(prefix: "kappa_test") { client, schema in
            let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
            try await store.migrate()
            try await client.withConnection { blocker in
                let running = Task { try await store.run() }
                defer { running.cancel() }
                try await eventually("the store holds its connections") { store.heldConnections.count == 2 }
                try await blocker.query("BEGIN", logger: testLogger)
                do {
                    try await blocker.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(schema).events IN SHARE ROW EXCLUSIVE MODE"), logger: testLogger)
                    let append = Task { try await store.append(try deposits(1), to: "account-3", expectedVersion: .noStream) }
                    try await eventually("the append waits for the lock on a held connection") {
                        let waiting = try await scalar(
                            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = \(schema + ".events")::regclass", on: client)
                        return waiting == 1 && store.heldConnections.borrows.load(ordering: .relaxed) == 1
                    }
                    running.cancel()
                    // The idle one goes back to the pool; the borrowed one stays held while its append waits.
                    try await eventually("the idle connection was let go") { store.heldConnections.count == 1 }
                    #expect(store.heldConnections.count == 1)
                    try await blocker.query("ROLLBACK", logger: testLogger)
                    #expect(try await append.value.streamVersion == 1)
                } catch {
                    // The lock must not outlive a failure here: the schema is dropped after.
                    _ = try? await blocker.query("ROLLBACK", logger: testLogger)
                    throw error
                }
                try await running.value
                #expect(store.heldConnections.count == 0)
            }
        }
    }
}
