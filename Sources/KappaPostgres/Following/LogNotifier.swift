import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Tells followers that the log has grown, without slowing appends down.
///
/// A `NOTIFY` inside every append transaction takes a global lock at commit and cuts concurrent
/// append throughput several-fold. So notifications are rationed by ``minimumInterval``:
/// - An append that finds the appends' allowance unspent (one per interval on average, two at once)
///   and no other append of this process carrying one still in flight carries the notification
///   itself, as a `NOTIFY` in its own transaction: a follower elsewhere is woken by its commit, with
///   no round trip after it. At up to one append per interval, every append does.
/// - Appends beyond that only ring the notifier (no I/O); its ``run()`` loop sends one coalesced
///   `pg_notify` for all of them, outside any append transaction, from an allowance of its own (one
///   per interval) and no sooner than half an interval after the last notification. Under a faster
///   stream of appends a follower elsewhere is so woken about every half interval.
/// Followers in this process are woken in memory by every append either way.
///
/// Notifications are sent only while a follower of another process listens: a ``ProjectionRuntime``'s
/// listening connection names itself in `application_name` (`kappa-listener <channel hash> <id>`), and the notifier
/// looks in `pg_stat_activity` for such connections at most every ``listenerCheckInterval``. With
/// every follower in this process (woken in memory), nothing is sent: each notification is a
/// transaction of its own, and 200 a second cost followers here about a quarter of their live latency.
///
/// Run it as a `Service` (or in a task) beside the store that rings it: until its loop has seen a
/// listener, appends carry no notification.
public final class LogNotifier: Service, Sendable {
    /// The channel followers `LISTEN` on.
    public let channel: String
    /// The interval each allowance spaces notifications at, on average (appends' carried ones, the
    /// loop's): appends within half of it share one. Default 2.5 ms.
    public let minimumInterval: Duration
    /// How old the notifier's knowledge of other processes' listeners may be. A follower that has just
    /// started listening may miss notifications for this long (it polls meanwhile). Default 1 s.
    public let listenerCheckInterval: Duration
    /// Sent as the payload, so a runtime in this process can ignore its own notifier's notifications
    /// (it was woken in memory already).
    package let id = UUID().uuidString
    let client: PostgresClient
    let logger: Logger
    private let pending = Doorbell()
    private let subscribers = Mutex<[ObjectIdentifier: Doorbell]>([:])
    private let schedule = Mutex(NotificationSchedule())
    private let sent = Atomic<Int>(0)
    private let carried = Atomic<Int>(0)
    private let wakes = Atomic<Int>(0)

    /// - Parameters:
    ///   - client: The log database's client.
    ///   - schema: The log's schema; the channel is `kappa_log_<schema>`.
    ///   - minimumInterval: The interval each allowance spaces notifications at, on average (default
    ///     2.5 ms): about twice the extra latency for followers in other processes under a fast stream of
    ///     appends, and half the notifications sent per second (carried ones at most one per interval).
    ///   - listenerCheckInterval: How often, at most, the notifier looks for listeners of other
    ///     processes (default 1 s).
    ///   - logger: Where the notifier logs (`kappa.*` metadata).
    public init(
        client: PostgresClient, schema: String = "kappa", minimumInterval: Duration = .microseconds(2_500),
        listenerCheckInterval: Duration = .seconds(1), logger: Logger
    ) throws {
        self.client = client
        self.minimumInterval = minimumInterval
        self.listenerCheckInterval = listenerCheckInterval
        self.channel = "kappa_log_\(try SQLIdentifier(schema, role: "schema").name)"
        self.logger = logger
    }

    /// Whether the append about to be sent should carry the next notification (then it binds
    /// ``channel`` and ``id`` into its `NOTIFY`); it must then report with ``appended(carried:)`` or
    /// ``notificationNotCarried()``.
    func claimNotification() -> Bool {
        let (claimed, stale) = schedule.withLock {
            $0.claim(at: .now, interval: minimumInterval, listenerCheckInterval: listenerCheckInterval)
        }
        // The loop looks for listeners again when it wakes, even if this append needs nothing of it.
        if stale { pending.ring() }
        return claimed
    }

    /// Called after every successful append. Never blocks, never fails.
    public func appended() { appended(carried: false) }

    /// Called after a successful append; `carried`: it sent the notification it claimed, `took`
    /// after claiming it.
    func appended(carried: Bool, took: Duration = .zero) {
        for doorbell in subscribers.withLock({ Array($0.values) }) { doorbell.ring() }
        if carried {
            self.carried.add(1, ordering: .relaxed)
            schedule.withLock { $0.carried(took: took, at: .now) }
        } else {
            schedule.withLock { $0.uncovered = true }
            pending.ring()
        }
    }

    /// Called when an append that claimed the notification wrote nothing: the appends before it are
    /// notified by the loop instead.
    func notificationNotCarried() {
        schedule.withLock { $0.notCarried() }
        pending.ring()
    }

    func subscribe(_ doorbell: Doorbell) {
        subscribers.withLock { $0[ObjectIdentifier(doorbell)] = doorbell }
    }

    func unsubscribe(_ doorbell: Doorbell) {
        subscribers.withLock { $0[ObjectIdentifier(doorbell)] = nil }
    }

    /// Notifications sent so far: by the loop, and carried by appends.
    package var notificationsSent: Int { sent.load(ordering: .relaxed) + carried.load(ordering: .relaxed) }

    /// Notifications appends carried in their own transactions so far.
    package var notificationsCarried: Int { carried.load(ordering: .relaxed) }

    /// Times the sending loop has woken for appends so far.
    package var wakeUps: Int { wakes.load(ordering: .relaxed) }

    /// The `application_name` of a connection listening on `channel` on behalf of followers woken by
    /// notifier `id` — in memory, so they need no notification from that notifier. At most 60 bytes
    /// (PostgreSQL keeps 63): the channel, which can be long, goes in as a hash.
    package static func listenerName(channel: String, id: String) -> String { "\(listenerPrefix(channel: channel))\(id)" }

    /// What the names of every listener on `channel` begin with.
    package static func listenerPrefix(channel: String) -> String {
        let hash = UInt32(truncatingIfNeeded: stableHash(channel))
        let hex = String(hash, radix: 16)
        return "kappa-listener \(String(repeating: "0", count: 8 - hex.count))\(hex) "
    }

    /// Sends the coalesced notifications until cancelled or shut down gracefully.
    ///
    /// A `NOTIFY` needs a transaction of its own; it commits without waiting for the disk
    /// (`synchronous_commit` off for that transaction only): a lost notification only means a follower polls.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.pending.wait(timeout: .seconds(3600))
                if Task.isCancelled { break }
                self.wakes.add(1, ordering: .relaxed)
                let now = ContinuousClock.now
                var (othersListen, checked) = self.schedule.withLock { ($0.othersListen, $0.checked) }
                if checked.map({ now - $0 >= self.listenerCheckInterval }) ?? true {
                    othersListen = await self.othersListen()
                    self.schedule.withLock {
                        $0.othersListen = othersListen
                        $0.checked = now
                    }
                    checked = now
                }
                guard othersListen else {
                    // Nobody to notify: sleep until the next look, rather than wake for every append
                    // (up to 200 times a second, which cost 32 writers ~5 % of their appends here).
                    try? await Task.sleep(until: (checked ?? now) + self.listenerCheckInterval)
                    continue
                }
                // Appends not covered by a notification yet: one at the interval's end, unless an
                // append claims it first. Appends until then ring `pending` once: they share it.
                while !Task.isCancelled, let due = self.schedule.withLock({ $0.uncovered ? $0.nextDue(at: .now, interval: self.minimumInterval) : nil }) {
                    if due > .now {
                        try? await Task.sleep(until: due)
                    } else if self.schedule.withLock({ $0.claimForLoop(at: .now, interval: self.minimumInterval) }) {
                        await self.notify()
                    }
                }
            }
        }
    }

    private func notify() async {
        do {
            // Guarded: a statement written to a connection that has just closed would never end, and this loop with it.
            _ = try await client.guardedRows("SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(channel), \(id))", logger: logger) { _ in () }
            sent.add(1, ordering: .relaxed)
        } catch {
            logger.debug(
                "could not send a log notification; followers fall back to polling",
                metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Whether a connection other than this notifier's own followers' listens; `true` when that
    /// cannot be read (a notification too many costs little, one too few a poll interval).
    private func othersListen() async -> Bool {
        do {
            let counts = try await client.guardedRows(
                """
                SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND starts_with(application_name, \(Self.listenerPrefix(channel: channel)))
                  AND application_name <> \(Self.listenerName(channel: channel, id: id))
                """, logger: logger
            ) { try $0.decode(Int64.self) }
            return (counts.last ?? 0) > 0
        } catch {
            logger.debug("could not look for listeners; notifying", metadata: ["error": "\(String(reflecting: error))"])
            return true
        }
    }
}
