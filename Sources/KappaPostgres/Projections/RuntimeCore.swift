import Foundation
import Kappa
import Logging
import PostgresNIO
import Synchronization

/// What every runner of one ``ProjectionRuntime`` shares: connections, configuration, the stop flag
/// and the doorbells that wake runners and read-your-writes waiters.
final class RuntimeCore: Sendable {
    let log: PostgresEventStore
    let readModels: PostgresClient
    let notifier: LogNotifier?
    let configuration: ProjectionRuntime.Configuration
    let queries: ProjectionQueries
    let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let runnerBells = Mutex<[ObjectIdentifier: Doorbell]>([:])
    private let checkpointBells = Mutex<[ObjectIdentifier: Doorbell]>([:])

    init(log: PostgresEventStore, readModels: PostgresClient, notifier: LogNotifier?, configuration: ProjectionRuntime.Configuration, logger: Logger) throws {
        self.log = log
        self.readModels = readModels
        self.notifier = notifier
        self.configuration = configuration
        self.queries = ProjectionQueries(schema: try SQLIdentifier(configuration.schema, role: "projection runtime schema"))
        var logger = logger
        logger[metadataKey: "kappa.owner"] = "\(configuration.owner)"
        self.logger = logger
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Graceful shutdown: runners finish the batch in flight, commit, release their leases and return.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        for bell in runnerBells.withLock({ Array($0.values) }) { bell.ring() }
        stopBell.ring()
    }

    private let stopBell = Doorbell()

    /// Returns once ``stop()`` was called or the task is cancelled.
    func waitUntilStopped() async {
        while !isStopping && !Task.isCancelled {
            await stopBell.wait(timeout: .seconds(60))
        }
    }

    /// A doorbell rung when the log grows (in this process or, via LISTEN, another) and on stop.
    func makeRunnerBell() -> Doorbell {
        let bell = Doorbell()
        runnerBells.withLock { $0[ObjectIdentifier(bell)] = bell }
        notifier?.subscribe(bell)
        return bell
    }

    func dropRunnerBell(_ bell: Doorbell) {
        runnerBells.withLock { $0[ObjectIdentifier(bell)] = nil }
        notifier?.unsubscribe(bell)
    }

    private func ringRunners() {
        for bell in runnerBells.withLock({ Array($0.values) }) { bell.ring() }
    }

    /// Runs `body` with a doorbell rung whenever a runner of this runtime commits a checkpoint.
    func withCheckpointBell<R>(_ body: (Doorbell) async throws -> R) async rethrows -> R {
        let bell = Doorbell()
        checkpointBells.withLock { $0[ObjectIdentifier(bell)] = bell }
        defer { checkpointBells.withLock { $0[ObjectIdentifier(bell)] = nil } }
        return try await body(bell)
    }

    /// Called by this runtime's runners after each commit: remembers the checkpoint and wakes waiters.
    func checkpointCommitted(_ key: LeaseKey, at position: LogPosition) {
        checkpoints.withLock { $0[key] = max($0[key] ?? .start, position) }
        for bell in checkpointBells.withLock({ Array($0.values) }) { bell.ring() }
    }

    /// The last checkpoint a runner of this runtime committed for `key`, if any.
    func committedCheckpoint(_ key: LeaseKey) -> LogPosition? {
        checkpoints.withLock { $0[key] }
    }

    private let checkpoints = Mutex<[LeaseKey: LogPosition]>([:])
    private let held = Mutex<Set<LeaseKey>>([])

    /// Whether a runner of this runtime holds the lease on `key` now: then its commits, reported
    /// through ``checkpointCommitted(_:at:)``, are the whole truth and nobody needs to read the table.
    func holdsLease(_ key: LeaseKey) -> Bool { held.withLock { $0.contains(key) } }

    func setLease(_ key: LeaseKey, held isHeld: Bool) {
        held.withLock { if isHeld { $0.insert(key) } else { $0.remove(key) } }
    }

    /// Wakes runners on the log's `NOTIFY`s (sent by other processes' ``LogNotifier``s);
    /// reconnects with backoff when the listening connection drops. Ends when cancelled.
    func listenForAppends() async {
        let channel = "kappa_log_\(log.configuration.schema)"
        var backoff = Backoff(initial: configuration.initialBackoff, maximum: configuration.maximumBackoff)
        while !Task.isCancelled && !isStopping {
            do {
                try await log.client.withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        backoff.reset()
                        self.ringRunners()   // anything appended while we were not listening
                        // Our own notifier's notifications woke our runners in memory already.
                        let own = self.notifier?.id
                        for try await notification in notifications where notification.payload != own { self.ringRunners() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("listening for appends failed; runners poll until it reconnects",
                             metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// Runs `body` in a read-model transaction, unwrapping the driver's transaction error.
    func withReadModelTransaction<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        let synchronous = configuration.synchronousReadModelCommits, logger = self.logger
        do {
            return try await readModels.withTransaction(logger: logger) { connection in
                if !synchronous { try await connection.run("SET LOCAL synchronous_commit TO off", logger: logger) }
                return try await body(connection)
            }
        } catch let error as PostgresTransactionError {
            throw error.cause { $0 }
        }
    }
}
