import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// Counts the events it is handed: stands for an e-mail sender.
struct CountingReactor: Reactor {
    let name: String
    let handled: Locked<[UUID]>
    var start: ReactorStart { .beginning }
    var eventTypes: Set<String>? { ["CartCheckedOut"] }

    func react(to event: RecordedEvent) async throws {
        handled.withLock { $0.append(event.id) }
    }
}

@Suite("Reactors", .serialized)
struct ReactorTests {
    @Test func aReactorDoesNotRunAgainWhenAProjectionIsRebuilt() async throws {
        try await withProjectionFixture { f in
            let seeded = try await CartEvents.seed(f.store, carts: 10, eventsPerCart: 5)
            let handled = Locked<[UUID]>([])
            let reactor = CountingReactor(name: f.name("mailer"), handled: handled)
            let v1 = CartSummaryProjection(name: f.name("carts"), version: 1)
            let first = try f.runtime([v1], reactors: [reactor])
            try await withRunning(first) {
                // Generous: the horizon is cluster-wide, and suites beside this one hold it at times.
                try await first.waitUntil(v1.name, hasPassed: seeded, timeout: .seconds(30))
                try await eventually("the reactor handled every checkout") { handled.withLock { $0.count } == 10 }
            }
            // A new projection version replays the whole log from the start, beside the reactor.
            let v2 = CartSummaryProjection(name: f.name("carts"), version: 2)
            let second = try f.runtime([v1, v2], reactors: [reactor])
            try await withRunning(second) {
                try await second.waitUntil(v2.name, version: 2, hasPassed: seeded, timeout: .seconds(30))
                #expect(handled.withLock { $0.count } == 10, "the rebuild ran no side effect again")
                // New events still reach it, once.
                let last = try await f.store.append([CartEvents.checkedOut(cart: 50)], to: "cart-50", expectedVersion: .any).lastPosition!
                try await eventually("the reactor handled the new checkout") { handled.withLock { $0.count } == 11 }
                try await second.waitUntil(v1.name, version: 1, hasPassed: last, timeout: .seconds(30))
                try await second.waitUntil(v2.name, version: 2, hasPassed: last, timeout: .seconds(30))
            }
            let ids = handled.withLock { $0 }
            #expect(Set(ids).count == ids.count, "no event handled twice")
            #expect(try await f.difference("\(v1.name)_v1.carts", "\(v2.name)_v2.carts") == 0)
        }
    }

    /// A reactor whose service is down keeps retrying the event — for longer than its lease lasts —
    /// and keeps its lease: a second process running it does not act on the same event beside it
    /// (before, the lease expired during the retries and both called the service).
    @Test func aReactorRetryingLongerThanItsLeaseKeepsIt() async throws {
        struct ServiceDown: Error {}
        struct Flaky: Reactor {
            let name: String
            let calls: Locked<Int>
            let downUntil: ContinuousClock.Instant
            var start: ReactorStart { .beginning }
            func react(to event: RecordedEvent) async throws {
                calls.withLock { $0 += 1 }
                if ContinuousClock.now < downUntil { throw ServiceDown() }
            }
        }
        try await withProjectionFixture { f in
            _ = try await f.store.append([CartEvents.checkedOut(cart: 1)], to: "cart-1", expectedVersion: .noStream)
            let name = f.name("mailer"), downUntil = ContinuousClock.now + .seconds(3)
            let callsA = Locked(0), callsB = Locked(0)
            var configuration = f.configuration(owner: "a", lease: .seconds(1))
            configuration.maximumBackoff = .milliseconds(100)
            let a = try f.runtime([], reactors: [Flaky(name: name, calls: callsA, downUntil: downUntil)], configuration: configuration)
            configuration.owner = "b"
            let b = try f.runtime([], reactors: [Flaky(name: name, calls: callsB, downUntil: downUntil)], configuration: configuration)
            try await withRunning(a) {
                try await eventually("a is retrying") { callsA.withLock { $0 } >= 2 }
                try await withRunning(b) {
                    try await eventually("the service is back and the event handled", timeout: .seconds(20)) {
                        try await scalar(
                            PostgresQuery(unsafeSQL: "SELECT checkpoint_position FROM \(f.runtimeSchema).reactors WHERE name = '\(name)'"), on: f.client) > 0
                    }
                }
            }
            #expect(callsA.withLock { $0 } > 5, "a retried through the outage")
            #expect(callsB.withLock { $0 } == 0, "b never acted on the event a was retrying")
        }
    }

    @Test func aNewReactorStartsAtTheHeadByDefault() async throws {
        struct Recent: Reactor {
            let name: String
            let handled: Locked<[LogPosition]>
            func react(to event: RecordedEvent) async throws { handled.withLock { $0.append(event.position) } }
        }
        try await withProjectionFixture { f in
            let seeded = try await CartEvents.seed(f.store, carts: 5, eventsPerCart: 4)
            // A reactor starts at the log's horizon when it registers: wait until that is past the
            // seed (another test's open transaction can hold it below for a moment).
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let handled = Locked<[LogPosition]>([])
            let runtime = try f.runtime([], reactors: [Recent(name: f.name("recent"), handled: handled)])
            try await runtime.migrate()
            let appended = Locked<[LogPosition]>([])
            try await withRunning(runtime) {
                try await eventually("the reactor is registered") {
                    try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).reactors"), on: f.client) == 1
                }
                let result = try await f.store.append([CartEvents.added(cart: 1), CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .any)
                appended.withLock { $0 = result.positions }
                // At least: a reactor's effect is at least once, so a retried batch under load may repeat one.
                try await eventually("the reactor saw the new events") { handled.withLock { $0.count } >= 2 }
            }
            let seen = handled.withLock { $0 }
            #expect(seen.allSatisfy { $0 > seeded }, "history before registration was not acted on: \(seen)")
            #expect(Set(seen) == Set(appended.withLock { $0 }), "both new events, and nothing else: \(seen)")
        }
    }
}
