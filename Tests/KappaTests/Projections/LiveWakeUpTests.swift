import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// How live runners learn that the log has grown: in memory in this process; by `NOTIFY` from
/// another, sent only while a listener other than the notifier's own process's is connected; and by
/// looking again soon while committed events are held back behind the gap-free horizon.
@Suite("Live wake-ups", .serialized)
struct LiveWakeUpTests {
    /// A notifier, a store that rings it, and a runtime of another "process" (no notifier of its own,
    /// so its listener is not the notifier's) that polls only every minute: it sees an append in time
    /// only if a notification wakes it.
    @Test func aListenerOfAnotherProcessIsNotifiedAndOurOwnIsNot() async throws {
        try await withProjectionFixture { f in
            let notifier = try LogNotifier(client: f.client, schema: f.store.configuration.schema, listenerCheckInterval: .zero, logger: testLogger)
            let store = try PostgresEventStore(client: f.client, configuration: f.store.configuration, notifier: notifier, logger: testLogger)
            let prefix = LogNotifier.listenerPrefix(channel: notifier.channel)
            @Sendable func listeners() async throws -> Int64 {
                try await scalar("SELECT count(*) FROM pg_stat_activity WHERE starts_with(application_name, \(prefix))", on: f.client)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await notifier.run() }
                defer { group.cancelAll() }

                // Our own runtime (woken in memory by this notifier): appends send no notification.
                let ours = CartSummaryProjection(name: f.name("ours"))
                let own = try ProjectionRuntime(
                    log: store, readModels: f.client, projections: [ours], notifier: notifier,
                    configuration: f.configuration(owner: "ours"), logger: testLogger)
                try await withRunning(own) {
                    try await eventually("our runtime's listener is connected", timeout: .seconds(10)) { try await listeners() == 1 }
                    // Built, promoted and following live first: the waits below time the wake-ups alone.
                    try await eventually("our version is live", timeout: .seconds(30)) {
                        try await own.status().first { $0.name == ours.name }?.state == .live
                    }
                    for cart in 0..<5 {
                        let appended = try await store.append([CartEvents.added(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .any)
                        try await own.waitUntil(ours.name, hasPassed: appended.lastPosition!, timeout: .seconds(10))
                    }
                    #expect(notifier.notificationsSent == 0)
                    #expect(own.notificationsReceived == 0)
                }

                // Another process's runtime: its runner polls every minute, so only a notification
                // wakes it in time.
                let theirs = CartSummaryProjection(name: f.name("theirs"))
                var slow = f.configuration(owner: "theirs")
                slow.idlePollInterval = .seconds(60)
                let other = try ProjectionRuntime(
                    log: f.store, readModels: f.client, projections: [theirs], notifier: nil,
                    configuration: slow, logger: testLogger)
                try await withRunning(other) {
                    let first = try await store.append([CartEvents.added(cart: 10)], to: "cart-10", expectedVersion: .any)
                    // Caught up at its start, and listening.
                    try await other.waitUntil(theirs.name, hasPassed: first.lastPosition!, timeout: .seconds(30))
                    try await eventually("the other runtime's listener is connected", timeout: .seconds(10)) { try await listeners() == 1 }
                    for cart in 11..<14 {
                        let appended = try await store.append([CartEvents.added(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .any)
                        try await other.waitUntil(theirs.name, hasPassed: appended.lastPosition!, timeout: .seconds(10))
                    }
                    #expect(notifier.notificationsSent >= 1)
                    // And they woke it (not a recheck of a horizon that another suite held back).
                    #expect(other.notificationsReceived >= 1)
                }
                // A listener that stopped leaves no name behind on its pooled connection.
                try await eventually("the listener's name is gone", timeout: .seconds(10)) { try await listeners() == 0 }
            }
        }
    }

    /// An append that finds the notifier's allowance unspent (an interval of zero here: always)
    /// carries the notification in its own transaction, and wakes another process's runner (which
    /// polls every minute) by its commit: the notifier's loop sends none for it. An append that
    /// writes nothing carries none.
    @Test func anAppendCarriesTheNotificationWhenTheNotifierIsIdle() async throws {
        try await withProjectionFixture { f in
            let notifier = try LogNotifier(
                client: f.client, schema: f.store.configuration.schema, minimumInterval: .zero, listenerCheckInterval: .zero,
                logger: testLogger)
            let store = try PostgresEventStore(client: f.client, configuration: f.store.configuration, notifier: notifier, logger: testLogger)
            let theirs = CartSummaryProjection(name: f.name("theirs"))
            var slow = f.configuration(owner: "theirs")
            slow.idlePollInterval = .seconds(60)
            let other = try ProjectionRuntime(
                log: f.store, readModels: f.client, projections: [theirs], notifier: nil, configuration: slow, logger: testLogger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await notifier.run() }
                defer { group.cancelAll() }
                try await withRunning(other) {
                    let prefix = LogNotifier.listenerPrefix(channel: notifier.channel)
                    try await eventually("the other runtime's listener is connected", timeout: .seconds(10)) {
                        try await scalar("SELECT count(*) FROM pg_stat_activity WHERE starts_with(application_name, \(prefix))", on: f.client) == 1
                    }
                    // The first append finds no listener known yet: the loop looks, and notifies.
                    let first = try await store.append([CartEvents.added(cart: 0)], to: "cart-0", expectedVersion: .any)
                    try await other.waitUntil(theirs.name, hasPassed: first.lastPosition!, timeout: .seconds(30))
                    try await eventually("the loop notified", timeout: .seconds(10)) { notifier.notificationsSent >= 1 }
                    #expect(notifier.notificationsCarried == 0)
                    let (sent, received) = (notifier.notificationsSent, other.notificationsReceived)
                    for cart in 1...5 {
                        // Several events in one append carry one notification too.
                        let events = (0..<(cart == 5 ? 2 : 1)).map { _ in CartEvents.added(cart: cart) }
                        let appended = try await store.append(events, to: StreamID("cart-\(cart)"), expectedVersion: .any)
                        try await other.waitUntil(theirs.name, hasPassed: appended.lastPosition!, timeout: .seconds(10))
                    }
                    // Each append notified once, by itself; under load, a carried append over 100 ms
                    // pauses carrying for a second, and the loop notifies for the rest instead.
                    let carried = notifier.notificationsCarried
                    #expect(carried >= 1)
                    #expect(notifier.notificationsSent - sent == 5, "\(notifier.notificationsSent - sent) notifications, \(carried) carried")
                    // Each arrives. (A runner woken otherwise — a recheck of a horizon another suite
                    // held back — can pass the last event before its notification is delivered.)
                    try await eventually("the five notifications arrived", timeout: .seconds(10)) { other.notificationsReceived - received >= 5 }
                    // A conflicting append writes nothing and carries nothing.
                    await #expect(throws: EventStoreError.self) {
                        _ = try await store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream)
                    }
                    #expect(notifier.notificationsCarried == carried)
                }
            }
        }
    }

    /// However many appends arrive at once, carried or sent by the loop, notifications stay within
    /// one per `minimumInterval`.
    @Test func concurrentAppendsShareNotifications() async throws {
        try await withProjectionFixture { f in
            let interval = Duration.milliseconds(20)
            let notifier = try LogNotifier(
                client: f.client, schema: f.store.configuration.schema, minimumInterval: interval, listenerCheckInterval: .zero,
                logger: testLogger)
            let store = try PostgresEventStore(client: f.client, configuration: f.store.configuration, notifier: notifier, logger: testLogger)
            try await f.client.withConnection { listening in
                let name = LogNotifier.listenerName(channel: notifier.channel, id: "another-process")
                try await listening.query("SELECT set_config('application_name', \(name), false)", logger: testLogger)
                let outcome: Result<Void, any Error>
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await notifier.run() }
                        defer { group.cancelAll() }
                        _ = try await store.append([CartEvents.added(cart: 0)], to: "cart-0", expectedVersion: .any)
                        try await eventually("the notifier saw the listener", timeout: .seconds(10)) { notifier.notificationsSent == 1 }
                        let start = ContinuousClock.now
                        try await withThrowingTaskGroup(of: Void.self) { writers in
                            for writer in 0..<8 {
                                writers.addTask {
                                    for n in 0..<25 {
                                        let cart = 1 + writer * 25 + n
                                        _ = try await store.append([CartEvents.added(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .any)
                                    }
                                }
                            }
                            try await writers.waitForAll()
                        }
                        // The last appends' notification follows within one interval. Counted before the
                        // time is taken: a notification later still is not counted.
                        try await Task.sleep(for: interval * 3)
                        let count = notifier.notificationsSent - 1
                        let elapsed = ContinuousClock.now - start
                        // The allowances: appends carry one per interval (two at once), the loop sends one per interval.
                        #expect(count <= 2 * Int(elapsed / interval) + 3, "\(count) notifications for 200 appends in \(elapsed)")
                        #expect(notifier.notificationsCarried >= 1)
                    }
                    outcome = .success(())
                } catch {
                    outcome = .failure(error)
                }
                // Unnamed again before the connection goes back to the pool.
                try await listening.query("RESET application_name", logger: testLogger)
                try outcome.get()
            }
        }
    }

    /// With no listener of another process, the notifier sleeps until its next look for one instead
    /// of waking for every append (or every `minimumInterval`: up to 200 times a second).
    @Test func aNotifierNobodyElseListensToWakesOncePerLook() async throws {
        try await withProjectionFixture { f in
            let notifier = try LogNotifier(client: f.client, schema: f.store.configuration.schema, listenerCheckInterval: .seconds(60), logger: testLogger)
            let store = try PostgresEventStore(client: f.client, configuration: f.store.configuration, notifier: notifier, logger: testLogger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await notifier.run() }
                defer { group.cancelAll() }
                // Appends for at least 50 ms: ten of the notifier's 5 ms intervals.
                var appends = 0
                let end = ContinuousClock.now + .milliseconds(50)
                while appends < 20 || ContinuousClock.now < end {
                    _ = try await store.append([CartEvents.added(cart: appends)], to: StreamID("cart-\(appends)"), expectedVersion: .any)
                    appends += 1
                }
                try await eventually("the notifier woke for the first append") { notifier.wakeUps >= 1 }
                #expect(notifier.wakeUps == 1, "woke \(notifier.wakeUps) times for \(appends) appends")
                #expect(notifier.notificationsSent == 0)
            }
        }
    }

    /// While appends arrive fast, a live runner pauses before reading on, so that its next batch
    /// carries more (``ProjectionRuntime/Configuration/liveCoalescing``, a minute here). A
    /// read-your-writes wait does not sit out the pause: its beginning ends it.
    @Test func aReadYourWritesWaitEndsACoalescingPause() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("coalesced"))
            var configuration = f.configuration(batchSize: 1_000)
            configuration.liveCoalescing = .seconds(60)
            let runtime = try f.runtime([projection], configuration: configuration)
            try await withRunning(runtime) {
                let first = try await f.store.append([CartEvents.added(cart: 0)], to: "cart-0", expectedVersion: .any)
                try await runtime.waitUntil(projection.name, hasPassed: first.lastPosition!, timeout: .seconds(30))
                // Appends of 50 events, back to back: thousands of events a second, so the runner pauses.
                var cart = 1
                while runtime.coalescingPauses == 0 {
                    try #require(cart <= 2_000, "the runner never paused")
                    _ = try await f.store.append((0..<50).map { _ in CartEvents.added(cart: cart) }, to: StreamID("cart-\(cart)"), expectedVersion: .any)
                    cart += 1
                }
                let appended = try await f.store.append([CartEvents.added(cart: 0)], to: "cart-0", expectedVersion: .any)
                let waited = try await ContinuousClock().measure {
                    try await runtime.waitUntil(projection.name, hasPassed: appended.lastPosition!, timeout: .seconds(30))
                }
                #expect(waited < .seconds(10), "took \(waited)")
                let total = try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(events)::int8 FROM \(projection.name)_v1.carts"), on: f.client)
                #expect(total == Int64(2 + 50 * (cart - 1)))
            }
        }
    }

    /// An append that commits while an older transaction (not an append) is open is held back behind
    /// the horizon: the doorbell its commit rings finds nothing to read, and the end of the older
    /// transaction rings nothing. The runner, which would otherwise wait its whole idle interval
    /// (a minute here), looks again soon and applies it.
    @Test func anEventHeldBackByAnOpenTransactionIsAppliedSoonAfterItEnds() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("held"))
            var configuration = f.configuration()
            configuration.idlePollInterval = .seconds(60)
            let runtime = try f.runtime([projection], configuration: configuration)
            try await withRunning(runtime) {
                let first = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .any)
                try await runtime.waitUntil(projection.name, hasPassed: first.lastPosition!, timeout: .seconds(30))
                let (opened, release) = AsyncStream<Void>.makeStream()
                let (held, hold) = AsyncStream<Void>.makeStream()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // An open transaction with a transaction id, older than the append below.
                    group.addTask {
                        try await f.client.withConnection { connection in
                            try await connection.query("BEGIN", logger: testLogger)
                            try await connection.query("SELECT pg_current_xact_id()", logger: testLogger)
                            hold.yield()
                            for await _ in opened { break }
                            try await connection.query("COMMIT", logger: testLogger)
                        }
                    }
                    for await _ in held { break }
                    let appended = try await f.store.append([CartEvents.added(cart: 2)], to: "cart-2", expectedVersion: .any)
                    // Held back while the older transaction is open.
                    await #expect(throws: ProjectionError.self) {
                        try await runtime.waitUntil(projection.name, hasPassed: appended.lastPosition!, timeout: .milliseconds(300))
                    }
                    release.yield()
                    try await group.waitForAll()
                    let clock = ContinuousClock()
                    let waited = try await clock.measure {
                        try await runtime.waitUntil(projection.name, hasPassed: appended.lastPosition!, timeout: .seconds(20))
                    }
                    // Rechecks back off to 100 ms: a second is ample; the idle interval is a minute.
                    #expect(waited < .seconds(3), "took \(waited)")
                }
            }
        }
    }
}
