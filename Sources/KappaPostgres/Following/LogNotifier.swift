import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Tells followers that the log has grown, without slowing appends down.
///
/// A `NOTIFY` inside every append transaction takes a global lock at commit and cuts concurrent
/// append throughput several-fold. So appends only ring this notifier (no I/O); its ``run()`` loop
/// then wakes the followers in this process at once and sends one coalesced `pg_notify` — outside any
/// append transaction — for followers in other processes. However many appends happen while a
/// notification is being sent, they cost one more notification, not one each.
///
/// Notifications are sent only while a follower of another process listens: a ``ProjectionRuntime``'s
/// listening connection names itself in `application_name` (`kappa-listener <channel hash> <id>`), and the notifier
/// looks in `pg_stat_activity` for such connections at most every ``listenerCheckInterval``. With
/// every follower in this process (woken in memory), nothing is sent: each notification is a
/// transaction of its own, and 200 a second cost followers here about a quarter of their live latency.
///
/// Run it as a `Service` (or in a task) beside the store that rings it.
public final class LogNotifier: Service, Sendable {
    /// The channel followers `LISTEN` on.
    public let channel: String
    /// The shortest time between two notifications: appends within it share one. Default 5 ms.
    public let minimumInterval: Duration
    /// How old the notifier's knowledge of other processes' listeners may be. A follower that has just
    /// started listening may miss notifications for this long (it polls meanwhile). Default 1 s.
    public let listenerCheckInterval: Duration
    /// Sent as the payload, so a runtime in this process can ignore its own notifier's notifications
    /// (it was woken in memory already).
    let id = UUID().uuidString
    let client: PostgresClient
    let logger: Logger
    private let pending = Doorbell()
    private let subscribers = Mutex<[ObjectIdentifier: Doorbell]>([:])
    private let sent = Atomic<Int>(0)
    private let wakes = Atomic<Int>(0)

    /// - Parameters:
    ///   - client: The log database's client.
    ///   - schema: The log's schema; the channel is `kappa_log_<schema>`.
    ///   - minimumInterval: The shortest time between two notifications (default 5 ms): a bound on
    ///     the extra latency for followers in other processes, and on the notifications sent per second.
    ///   - listenerCheckInterval: How often, at most, the notifier looks for listeners of other
    ///     processes (default 1 s).
    ///   - logger: Where the notifier logs (`kappa.*` metadata).
    public init(
        client: PostgresClient, schema: String = "kappa", minimumInterval: Duration = .milliseconds(5),
        listenerCheckInterval: Duration = .seconds(1), logger: Logger
    ) throws {
        self.client = client
        self.minimumInterval = minimumInterval
        self.listenerCheckInterval = listenerCheckInterval
        self.channel = "kappa_log_\(try SQLIdentifier(schema, role: "schema").name)"
        self.logger = logger
    }

    /// Called after every successful append. Never blocks, never fails.
    public func appended() {
        for doorbell in subscribers.withLock({ Array($0.values) }) { doorbell.ring() }
        pending.ring()
    }

    func subscribe(_ doorbell: Doorbell) {
        subscribers.withLock { $0[ObjectIdentifier(doorbell)] = doorbell }
    }

    func unsubscribe(_ doorbell: Doorbell) {
        subscribers.withLock { $0[ObjectIdentifier(doorbell)] = nil }
    }

    /// Notifications sent so far.
    package var notificationsSent: Int { sent.load(ordering: .relaxed) }

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
            var othersListen = false
            var checked: ContinuousClock.Instant?
            while !Task.isCancelled {
                await self.pending.wait(timeout: .seconds(3600))
                if Task.isCancelled { break }
                self.wakes.add(1, ordering: .relaxed)
                let now = ContinuousClock.now
                if checked.map({ now - $0 >= self.listenerCheckInterval }) ?? true {
                    othersListen = await self.othersListen()
                    checked = now
                }
                if othersListen {
                    await self.notify()
                    // Appends until then ring `pending` once: they share the next notification.
                    try? await Task.sleep(until: now + self.minimumInterval)
                } else {
                    // Nobody to notify: sleep until the next look, rather than wake for every append
                    // (up to 200 times a second, which cost 32 writers ~5 % of their appends here).
                    try? await Task.sleep(until: (checked ?? now) + self.listenerCheckInterval)
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
