import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// When a runner counts as caught up — a rebuild returns, a building version is marked caught up:
/// once a read reaches the gap-free horizon, a page short of a batch, not only when a read comes
/// back empty, which appends arriving all the time may never leave.
@Suite("Caught up under appends", .serialized)
struct CaughtUpTests {
    @Test func aRebuildFinishesWhileAppendsKeepArriving() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("busy"))
            let seeded = try await CartEvents.seed(f.store, carts: 20, eventsPerCart: 10)
            let versions = try f.versions([projection])
            let finished = try await withThrowingTaskGroup(of: Bool?.self) { group in
                for writer in 0..<8 { // one event an append, back to back, until the rebuild has returned
                    group.addTask {
                        var n = 0
                        while !Task.isCancelled {
                            _ = try? await f.store.append([CartEvents.added(cart: n)], to: StreamID("busy-\(writer)-\(n)"), expectedVersion: .noStream)
                            n += 1
                        }
                        return nil
                    }
                }
                group.addTask {
                    try await eventually("appends are arriving") { try await f.store.head() > seeded }
                    try await versions.rebuild(projection.name, version: 1)
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(30))
                    return false
                }
                defer { group.cancelAll() }
                while let result = try await group.next() {
                    if let result { return result }
                }
                return false
            }
            #expect(finished, "the rebuild did not return within 30 s of appends")
            let row = try #require(try await versions.versions(of: projection.name).first)
            #expect(row.checkpoint > seeded)
            #expect(row.eventsApplied > 200)
            #expect(row.leaseOwner == nil)
        }
    }

    /// A rebuild makes a projection's first version active before it returns, even when the log
    /// runs more than `maximumPromotionLag` ahead of the horizon the version caught up at: an open
    /// append holds the horizon back while later appends commit past it.
    @Test func aRebuildReturnsWithItsFirstVersionActiveThoughTheLogRanAhead() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("ahead"))
            let seeded = try await CartEvents.seed(f.store, carts: 2, eventsPerCart: 3)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            var configuration = f.configuration()
            configuration.maximumPromotionLag = 2
            let versions = try f.versions([projection], configuration: configuration)
            try await withThrowingTaskGroup(of: Void.self) { group in
                try await f.store.withTransaction { transaction in
                    _ = try await transaction.append([CartEvents.added(cart: 50)], to: "cart-50", expectedVersion: .any)
                    // Five events past the held horizon, committed: the version caught up there lags by five.
                    for cart in 51..<56 {
                        _ = try await f.store.append([CartEvents.added(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .any)
                    }
                    group.addTask { try await versions.rebuild(projection.name, version: 1) }
                    // The rebuild creates the runtime's tables: until then there is nothing to read.
                    try await eventually("v1 caught up at the held horizon") {
                        (try? await versions.versions(of: projection.name))?.first?.lifecycle == .caughtUp
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await versions.activeVersion(of: projection.name) == 1)
            let row = try #require(try await versions.versions(of: projection.name).first)
            #expect(try await f.store.countEvents(after: row.checkpoint) <= 2, "promoted within maximumPromotionLag")
        }
    }
}
