import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Synchronization
import Testing

/// Projector processes sharing a runtime schema spread its versions between them
/// (``ProjectionRuntime/Configuration/balancesLeases``): real processes, one killed with SIGKILL,
/// one started later, appends arriving throughout, and every read model exact at the end.
@Suite("A balanced fleet of projector processes", .serialized)
struct FleetTests {
    /// The live leases on the nine versions, counted by holder.
    func holdings(_ f: ProjectionFixture, _ name: String) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for try await (owner, count) in try await f.client.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT lease_owner, count(*) FROM \(f.runtimeSchema).projections
                    WHERE name LIKE '\(name)\\_%' AND lease_owner IS NOT NULL AND lease_expires_at > now() GROUP BY lease_owner
                    """), logger: testLogger
        ).decode((String, Int64).self) {
            counts[owner] = Int(count)
        }
        return counts
    }

    @Test func nineVersionsSpreadOverThreeProcessesAndRebalanceWhenOneDiesAndOneJoins() async throws {
        try await withProjectionFixture { f in
            let name = f.name("fleet"), lease = Duration.milliseconds(1_500)
            try await f.runtime([]).migrate()
            try await CartEvents.seed(f.store, carts: 30, eventsPerCart: 10)
            func start(_ owner: String) throws -> ProjectorProcess {
                try ProjectorProcess(f, owner: owner, batchSize: 50, leaseMilliseconds: 1_500, delayMilliseconds: 0, mode: "fleet", name: name)
            }
            let a = try start("a"), b = try start("b"), c = try start("c")
            // Appends keep arriving while processes come and go.
            let appended = Atomic<Int>(300), last = Locked(LogPosition.start)
            let appender = Task {
                for cart in 1_000... {
                    if Task.isCancelled { return }
                    let position = try await f.store.append([CartEvents.added(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .noStream)
                        .lastPosition
                    appended.add(1, ordering: .relaxed)
                    if let position { last.withLock { $0 = position } }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            defer { appender.cancel() }

            try await eventually("each of three processes runs three versions", timeout: .seconds(60)) {
                try await holdings(f, name) == ["a": 3, "b": 3, "c": 3]
            }
            await c.killHard()
            let killed = ContinuousClock.now
            try await eventually("the other two take the killed process's versions over", timeout: .seconds(60)) {
                let held = try await holdings(f, name)
                return held["c"] == nil && held.values.reduce(0, +) == 9 && held.values.allSatisfy { $0 <= 5 }
            }
            let takeover = ContinuousClock.now - killed
            // Its leases and its membership expire (a lease), the others see it (a third of one), and
            // their runners look again (another third): about 1.7 leases, with room for a slow machine.
            #expect(takeover < lease * 5, "taken over \(takeover) after the kill; the lease is \(lease)")
            let d = try start("d")
            try await eventually("a fourth process gets its share", timeout: .seconds(60)) {
                let held = try await holdings(f, name)
                return held == ["a": 3, "b": 3, "d": 3]
            }
            #expect(a.log.contains("handing the lease over") || b.log.contains("handing the lease over"), "a graceful hand-over to the newcomer")

            appender.cancel()
            _ = await appender.result
            // The reference is built up to the last append: the horizon must have passed it.
            let lastAppend = last.withLock { $0 }
            try await eventually("the horizon passed the last append") { try await f.store.head() >= lastAppend }
            let head = try await f.store.head()
            let total = Int64(appended.load(ordering: .relaxed))
            // Every version exact: each event applied once, whoever ran it when.
            let reference = CartSummaryProjection(name: f.name("ref"))
            try await f.buildReference(reference, through: head)
            for index in 0..<9 {
                let version = "\(name)_\(index)"
                try await eventually("\(version) caught up", timeout: .seconds(60)) {
                    try await scalar(PostgresQuery(unsafeSQL: "SELECT coalesce(sum(events), 0)::int8 FROM \(version)_v1.carts"), on: f.client) == total
                }
                #expect(try await f.difference("\(version)_v1.carts", "\(reference.name)_v1.carts") == 0)
            }
            for process in [a, b, d] { await process.stopGracefully() }
            #expect(try await holdings(f, name).isEmpty, "a graceful stop releases every lease")
            #expect(
                try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).runtime_members WHERE expires_at > now()"), on: f.client)
                    == 0, "and leaves the fleet")
        }
    }
}
