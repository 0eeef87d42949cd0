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
/// Run it as a `Service` (or in a task) beside the store that rings it.
public final class LogNotifier: Service, Sendable {
    /// The channel followers `LISTEN` on.
    public let channel: String
    /// The shortest time between two notifications: appends within it share one. Default 5 ms.
    public let minimumInterval: Duration
    /// Sent as the payload, so a runtime in this process can ignore its own notifier's notifications
    /// (it was woken in memory already).
    let id = UUID().uuidString
    let client: PostgresClient
    let logger: Logger
    private let pending = Doorbell()
    private let subscribers = Mutex<[ObjectIdentifier: Doorbell]>([:])

    /// - Parameters:
    ///   - client: The log database's client.
    ///   - schema: The log's schema; the channel is `kappa_log_<schema>`.
    ///   - minimumInterval: The shortest time between two notifications (default 2 ms): a bound on
    ///     the extra latency for followers in other processes, and on the notifications sent per second.
    public init(client: PostgresClient, schema: String = "kappa", minimumInterval: Duration = .milliseconds(5), logger: Logger) throws {
        self.client = client
        self.minimumInterval = minimumInterval
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

    /// Sends the coalesced notifications until cancelled or shut down gracefully.
    ///
    /// A `NOTIFY` needs a transaction of its own; it commits without waiting for the disk
    /// (`synchronous_commit` off for that transaction only): a lost notification only means a follower polls.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.pending.wait(timeout: .seconds(3600))
                if Task.isCancelled { break }
                let sent = ContinuousClock.now
                do {
                    for try await _ in try await self.client.query(
                        "SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(self.channel), \(self.id))", logger: self.logger
                    ) {}
                } catch {
                    self.logger.debug("could not send a log notification; followers fall back to polling",
                                      metadata: ["error": "\(String(reflecting: error))"])
                }
                // Appends until then ring `pending` once: they share the next notification.
                try? await Task.sleep(until: sent + self.minimumInterval)
            }
        }
    }
}
