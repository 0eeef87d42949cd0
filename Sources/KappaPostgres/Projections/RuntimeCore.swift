import Foundation
import Kappa
import Logging
import PostgresNIO
import Synchronization

/// What every runner of one ``ProjectionRuntime`` shares: configuration, the database access
/// (``RuntimeDatabase``), the stop flag, the doorbells that wake runners and read-your-writes
/// waiters, and what the runtime knows in memory (leases held, checkpoints committed, rebuild
/// progress, the active versions read lately). Appends of other processes reach it through an
/// ``AppendListener``.
final class RuntimeCore: Sendable {
    let log: PostgresEventStore
    let readModels: PostgresClient
    let notifier: LogNotifier?
    let configuration: ProjectionRuntime.Configuration
    let queries: ProjectionQueries
    let logger: Logger
    private let stopping = Atomic<Bool>(false)
    /// Notifications from other processes' notifiers that woke this runtime's runners.
    let notificationsReceived = Atomic<Int>(0)
    /// Live (not rebuild) batches committed by this runtime's projection runners.
    let batchesCommitted = Atomic<Int>(0)
    /// Of those, the batches whose writes and checkpoint were sent as one statement (``SingleStatementProjection``).
    let singleStatementBatches = Atomic<Int>(0)
    /// Of those, the batches sent in one round trip through libpq's pipeline mode.
    let pipelinedBatches = Atomic<Int>(0)
    /// Bulk-rebuild batches sent in one round trip through libpq's pipeline mode.
    let pipelinedRebuildBatches = Atomic<Int>(0)
    /// Events bulk rebuilds read from the log (each page once, whatever the partitions it feeds).
    let rebuildEventsRead = Atomic<Int>(0)
    /// The versions whose live batches run statement by statement although ``pipeline`` is set
    /// (their handlers read through the connection).
    private let statementByStatement = Mutex<Set<LeaseKey>>([])
    /// The libpq connections of pipelined batches (``ProjectionRuntime/Configuration/pipelineConnectionString``).
    let pipeline: PipelineConnections?
    /// Coalescing pauses live runners have made (``ProjectionRuntime/Configuration/liveCoalescing``).
    let coalescingPauses = Atomic<Int>(0)
    /// This runtime instance, unique even among processes configured with the same owner: it holds
    /// leases (see ``Lease/acquire(_:_:core:allowDropped:)``) and names the listening connection when
    /// there is no notifier of its own (so that every notifier notifies it).
    let instanceID = UUID().uuidString
    private let runnerBells = Mutex<[ObjectIdentifier: Doorbell]>([:])
    private let rebuilds = Mutex<[LeaseKey: RebuildProgress]>([:])
    /// Read-your-writes waits on this runtime's own commits.
    let waiters: CheckpointWaiters
    /// Transactions and reads, under the connection guard and the watchdog.
    let database: RuntimeDatabase
    /// The runtimes sharing the schema, and which should run what.
    let fleet: Fleet

    init(log: PostgresEventStore, readModels: PostgresClient, notifier: LogNotifier?, configuration: ProjectionRuntime.Configuration, logger: Logger) throws {
        self.log = log
        self.readModels = readModels
        self.notifier = notifier
        self.configuration = configuration
        self.queries = ProjectionQueries(schema: try SQLIdentifier(configuration.schema, role: "projection runtime schema"))
        var logger = logger
        logger[metadataKey: "kappa.owner"] = "\(configuration.owner)"
        self.logger = logger
        let deadlines = Deadlines()
        self.waiters = CheckpointWaiters(deadlines: deadlines)
        self.database = RuntimeDatabase(
            log: log, readModels: readModels, transactionTimeout: configuration.transactionTimeout,
            deadlines: deadlines, idleLimit: SessionIdleLimit(configuration.leaseDuration), logger: logger)
        let target = PipelineTarget(database: database)
        self.pipeline = configuration.pipelineConnectionString.map {
            PipelineConnections(connectionString: $0, applicationName: "kappa-runtime", check: target.check)
        }
        self.fleet = Fleet(member: instanceID, enabled: configuration.balancesLeases, leaseDuration: configuration.leaseDuration)
    }

    /// The libpq connections for `key`'s live batches, unless they run statement by statement.
    func pipeline(for key: LeaseKey) -> PipelineConnections? {
        guard let pipeline, !statementByStatement.withLock({ $0.contains(key) }) else { return nil }
        return pipeline
    }

    /// Makes `key`'s live batches run statement by statement from now on.
    func runStatementByStatement(_ key: LeaseKey) {
        statementByStatement.withLock { _ = $0.insert(key) }
    }

    /// Records a runner's bulk-rebuild progress (`nil`: the rebuild ended).
    func recordProgress(_ key: LeaseKey, _ progress: RebuildProgress?) {
        rebuilds.withLock { $0[key] = progress }
    }

    func rebuildProgress() -> [RebuildProgress] {
        rebuilds.withLock { Array($0.values) }.sorted { ($0.projection, $0.version) < ($1.projection, $1.version) }
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Graceful shutdown: runners finish the batch in flight, commit, release their leases and return.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        for bell in runnerBells.withLock({ Array($0.values) }) { bell.ring() }
        waiters.endPauses()
        stopBell.ring()
        fleetBell.ring()
    }

    private let stopBell = Doorbell()

    /// A live runner's pause to coalesce (see ``CheckpointWaiters/pause(_:for:unless:began:)``).
    func coalescingPause(_ key: LeaseKey, for duration: Duration) async {
        await waiters.pause(key, for: duration, unless: { isStopping }, began: { coalescingPauses.add(1, ordering: .relaxed) })
    }

    /// Returns once ``stop()`` was called or the task is cancelled.
    func waitUntilStopped() async {
        while !isStopping && !Task.isCancelled {
            await stopBell.wait(timeout: .seconds(60))
        }
    }

    /// Returns after `duration`, or sooner once ``stop()`` was called (for one task at a time: the
    /// start-up's retries, then the fleet's).
    func fleetPause(_ duration: Duration) async {
        if !isStopping { await fleetBell.wait(timeout: duration) }
    }

    private let fleetBell = Doorbell()

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

    /// Wakes runners on the log's `NOTIFY`s (sent by other processes' ``LogNotifier``s) until
    /// cancelled or stopped; see ``AppendListener``.
    func listenForAppends() async {
        await AppendListener(
            log: log, listenerID: notifier?.id ?? instanceID, ownNotifierID: notifier?.id, database: database,
            initialBackoff: configuration.initialBackoff, maximumBackoff: configuration.maximumBackoff, logger: logger,
            isStopping: { [self] in isStopping },
            wake: { [self] notified in
                if notified { notificationsReceived.add(1, ordering: .relaxed) }
                ringRunners()
            }
        ).run()
    }

    /// Called by this runtime's runners after each commit: remembers the checkpoint and resumes the
    /// read-your-writes waits it satisfies.
    func checkpointCommitted(_ key: LeaseKey, at position: LogPosition) {
        checkpoints.withLock { $0[key] = max($0[key] ?? .start, position) }
        waiters.committed(key, at: position)
    }

    /// The last checkpoint a runner of this runtime committed for `key`, if any.
    func committedCheckpoint(_ key: LeaseKey) -> LogPosition? {
        checkpoints.withLock { $0[key] }
    }

    private let checkpoints = Mutex<[LeaseKey: LogPosition]>([:])
    private let activeVersions = Mutex<[String: (version: Int?, read: ContinuousClock.Instant)]>([:])

    /// The version the stable names of `name` point at, read from the database at most every 250 ms.
    func activeVersion(of name: String, maximumAge: Duration = .milliseconds(250)) async throws -> Int? {
        let now = ContinuousClock.now
        if let cached = activeVersions.withLock({ $0[name] }), now - cached.read < maximumAge { return cached.version }
        let rows: [ProjectionVersion]
        do {
            rows = try await database.readModelRows(queries.versions(name), resending: true) { try ProjectionVersion(name: name, row: $0) }
        } catch let error as PSQLError where error.sqlState == .undefinedTable {
            rows = [] // the runtime's tables do not exist yet: no version is active
        }
        let active = rows.last { $0.lifecycle == .active }.map(\.version)
        activeVersions.withLock { $0[name] = (active, now) }
        return active
    }
    private let held = Mutex<Set<LeaseKey>>([])

    /// Whether a runner of this runtime holds the lease on `key` now: then its commits, reported
    /// through ``checkpointCommitted(_:at:)``, are the whole truth and nobody needs to read the table.
    func holdsLease(_ key: LeaseKey) -> Bool { held.withLock { $0.contains(key) } }

    func setLease(_ key: LeaseKey, held isHeld: Bool) {
        held.withLock { if isHeld { $0.insert(key) } else { $0.remove(key) } }
        waiters.wake(key) // its waits now read the table, or memory
    }
}

extension RuntimeCore {
    /// Runs `work` until it succeeds, retrying transient faults (``isTransient(_:)``) with backoff.
    /// - Returns: `false` when the runtime stopped (or the task was cancelled) before it succeeded.
    /// - Throws: the first fault that is not transient.
    func retryingTransientFaults(_ what: String, _ work: () async throws -> Void) async throws -> Bool {
        var backoff = Backoff(initial: configuration.initialBackoff, maximum: configuration.maximumBackoff)
        while !isStopping && !Task.isCancelled {
            do {
                try await work()
                return true
            } catch  where isTransient(error) {
                let pause = backoff.next()
                logger.warning(
                    "\(what) failed on a fault that passes; trying again",
                    metadata: ["error": "\(String(reflecting: error))", "kappa.retry_in": "\(pause)"])
                await fleetPause(pause)
            }
        }
        return false
    }
}
