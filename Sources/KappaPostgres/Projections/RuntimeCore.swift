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
    /// Notifications from other processes' notifiers that woke this runtime's runners.
    let notificationsReceived = Atomic<Int>(0)
    /// Live (not rebuild) batches committed by this runtime's projection runners.
    let batchesCommitted = Atomic<Int>(0)
    /// Of those, the batches whose writes and checkpoint were sent as one statement (``SingleStatementProjection``).
    let singleStatementBatches = Atomic<Int>(0)
    /// Coalescing pauses live runners have made (``ProjectionRuntime/Configuration/liveCoalescing``).
    let coalescingPauses = Atomic<Int>(0)
    /// This runtime instance, unique even among processes configured with the same owner: it holds
    /// leases (see ``Lease/acquire(_:_:core:allowDropped:)``) and names the listening connection when
    /// there is no notifier of its own (so that every notifier notifies it).
    let instanceID = UUID().uuidString
    private var listenerID: String { instanceID }
    private let runnerBells = Mutex<[ObjectIdentifier: Doorbell]>([:])
    private let rebuilds = Mutex<[LeaseKey: RebuildProgress]>([:])
    /// The watchdog's deadlines and read-your-writes timeouts.
    let deadlines = Deadlines()
    /// Read-your-writes waits on this runtime's own commits.
    let waiters: CheckpointWaiters
    /// The idle bound every read-model transaction has from its `BEGIN`.
    let idleLimit: SessionIdleLimit

    init(log: PostgresEventStore, readModels: PostgresClient, notifier: LogNotifier?, configuration: ProjectionRuntime.Configuration, logger: Logger) throws {
        self.log = log
        self.readModels = readModels
        self.notifier = notifier
        self.configuration = configuration
        self.queries = ProjectionQueries(schema: try SQLIdentifier(configuration.schema, role: "projection runtime schema"))
        self.waiters = CheckpointWaiters(deadlines: deadlines)
        self.idleLimit = SessionIdleLimit(configuration.leaseDuration)
        var logger = logger
        logger[metadataKey: "kappa.owner"] = "\(configuration.owner)"
        self.logger = logger
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
        let rows: [ProjectionQueries.VersionRow]
        do {
            rows = try await readModelRows(queries.versions(name), resending: true) { try $0.decode(ProjectionQueries.VersionRow.self) }
        } catch let error as PSQLError where error.sqlState == .undefinedTable {
            rows = []   // the runtime's tables do not exist yet: no version is active
        }
        let active = rows.last { $0.1 == "active" }.map { Int($0.0) }
        activeVersions.withLock { $0[name] = (active, now) }
        return active
    }
    private let held = Mutex<Set<LeaseKey>>([])

    /// Whether a runner of this runtime holds the lease on `key` now: then its commits, reported
    /// through ``checkpointCommitted(_:at:)``, are the whole truth and nobody needs to read the table.
    func holdsLease(_ key: LeaseKey) -> Bool { held.withLock { $0.contains(key) } }

    func setLease(_ key: LeaseKey, held isHeld: Bool) {
        held.withLock { if isHeld { $0.insert(key) } else { $0.remove(key) } }
        waiters.wake(key)   // its waits now read the table, or memory
    }

    /// Wakes runners on the log's `NOTIFY`s (sent by other processes' ``LogNotifier``s);
    /// reconnects with backoff when the listening connection drops. Ends when cancelled.
    func listenForAppends() async {
        let channel = "kappa_log_\(log.configuration.schema)"
        var backoff = Backoff(initial: configuration.initialBackoff, maximum: configuration.maximumBackoff)
        while !Task.isCancelled && !isStopping {
            do {
                try await log.client.withConnection { connection in
                    // Named, so that notifiers see a listener; our own notifier's name, so that it does
                    // not notify for us (it wakes our runners in memory).
                    let name = LogNotifier.listenerName(channel: channel, id: self.notifier?.id ?? self.listenerID)
                    let listened: Result<Void, any Error>
                    do {
                        try await ConnectionGuard.shared.run(on: connection) {
                            try await connection.run("SELECT set_config('application_name', \(name), false)", logger: self.logger)
                        }
                        try await connection.listen(on: channel) { notifications in
                            backoff.reset()
                            self.ringRunners()   // anything appended while we were not listening
                            // Our own notifier's notifications woke our runners in memory already.
                            let own = self.notifier?.id
                            for try await notification in notifications where notification.payload != own {
                                self.notificationsReceived.add(1, ordering: .relaxed)
                                self.ringRunners()
                            }
                        }
                        listened = .success(())
                    } catch {
                        listened = .failure(error)
                    }
                    // Unnamed again before the connection goes back to the pool (also when cancelled);
                    // a server that does not answer within 2 s has the connection closed instead.
                    await Task {   // its own task: the listener's cancellation must not cancel it
                        try? await self.withDeadline(.now + .seconds(2), abandon: { try? await connection.close() }) {
                            try await ConnectionGuard.shared.run(on: connection) {
                                try await connection.run("RESET application_name", logger: self.logger)
                            }
                        }
                    }.value
                    try listened.get()
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("listening for appends failed; runners poll until it reconnects",
                             metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// Runs `body` in a read-model transaction; its errors, and the driver's, come back as they are.
    ///
    /// Batches commit without waiting for the disk unless ``ProjectionRuntime/Configuration/synchronousReadModelCommits``:
    /// their checkpoint's statement sets that (``ProjectionQueries/commitMode(asynchronous:)``), which saves
    /// every batch a round trip; other transactions (set-up, switches) commit durably.
    ///
    /// With a watchdog: a transaction still running after `transactionTimeout` has its connection
    /// closed (so it can never commit) and is abandoned; the caller gets a transient fault and retries
    /// on a new connection. Seen here: after `pg_terminate_backend`, a query on the killed connection
    /// was sometimes never failed by the driver (1 run in ~8 of the connection-kill test), which
    /// wedged the runner for good.
    /// `watchdog: false` runs it without one (index builds at the end of a rebuild).
    func withReadModelTransaction<R: Sendable>(
        watchdog: Bool = true, _ body: @escaping @Sendable (PostgresConnection) async throws -> R
    ) async throws -> R {
        try await withReadModelConnection(watchdog: watchdog, transaction: true, body)
    }

    /// ``withReadModelTransaction(watchdog:_:)`` with or without the transaction block: without, for
    /// one statement that is its own transaction.
    func withReadModelConnection<R: Sendable>(
        watchdog: Bool = true, transaction inBlock: Bool, _ body: @escaping @Sendable (PostgresConnection) async throws -> R
    ) async throws -> R {
        let logger = self.logger, readModels = self.readModels, idleLimit = self.idleLimit
        let opened = ConnectionSlot()
        // Not PostgresClient.withTransaction: its ROLLBACK on a connection the server has just closed
        // never ends (postgres-nio drops a query written to a closed channel; see ConnectionGuard).
        // The whole transaction runs under the guard: the connection's close fails it (transient).
        @Sendable func transaction() async throws -> R {
            try await readModels.withConnection { connection in
                opened.set(connection)
                return try await ConnectionGuard.shared.run(on: connection) {
                    guard inBlock else { return try await body(connection) }
                    try await idleLimit.apply(to: connection, logger: logger)
                    return try await inTransaction(on: connection, send: { _ = try await connection.query($0, logger: logger) }) {
                        try await body(connection)
                    }
                }
            }
        }
        guard watchdog else {
            let work = Task { try await transaction() }
            return try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
        }
        return try await withWatchdog(abandon: {
            if let connection = opened.get() { try? await connection.close() }   // so it can never commit
        }, transaction)
    }

    /// A statement on a pooled read-model connection, read to the end, under the ``ConnectionGuard``
    /// (a connection that closes under it fails it at once, transiently, instead of never).
    /// `resending`: a read (or a statement safe to run twice), sent again when its connection is lost.
    func readModelRows<Row: Sendable>(
        _ query: PostgresQuery, resending: Bool = false, _ decode: @escaping @Sendable (PostgresRow) throws -> Row
    ) async throws -> [Row] {
        try await readModels.guardedRows(query, logger: logger, resending: resending, decode)
    }

    /// ``readModelRows(_:resending:_:)`` on the log's database; only reads are sent there.
    func logRows<Row: Sendable>(_ query: PostgresQuery, _ decode: @escaping @Sendable (PostgresRow) throws -> Row) async throws -> [Row] {
        try await log.client.guardedRows(query, logger: logger, resending: true, decode)
    }

    /// A page of the log after `position`, and whether events wait beyond the horizon (see
    /// ``HorizonRecheck``), read under the watchdog (a read is a query like any other).
    /// `refined`: below the horizon only transactions that may append to the log hold, for a reader
    /// held back a while (see ``HorizonRecheck/refine``).
    func readLog(after position: LogPosition, limit: Int, refined: Bool = false) async throws -> (events: [RecordedEvent], heldBack: Bool) {
        let log = self.log
        return try await withWatchdog { try await log.readLogPage(after: position, limit: limit, refined: refined) }
    }

    /// Runs `work` in a task of its own and returns its result — unless it is still running after
    /// ``ProjectionRuntime/Configuration/transactionTimeout``: then `abandon` runs, the task is
    /// cancelled and left behind, and the caller gets ``TransactionTimedOut`` (transient: it retries,
    /// on another connection). Seen here: after `pg_terminate_backend`, a query on the killed
    /// connection was sometimes never failed by the driver, which wedged a runner for good.
    func withWatchdog<R: Sendable>(
        abandon: @escaping @Sendable () async -> Void = {}, _ work: @escaping @Sendable () async throws -> R
    ) async throws -> R {
        try await withDeadline(.now + configuration.transactionTimeout, abandon: abandon, work)
    }

    /// Runs `work` in a task of its own and returns its result, or throws ``TransactionTimedOut``
    /// once `deadline` has passed (then `abandon` runs and the task is cancelled and left behind).
    func withDeadline<R: Sendable>(
        _ deadline: ContinuousClock.Instant, abandon: @escaping @Sendable () async -> Void = {},
        _ work: @escaping @Sendable () async throws -> R
    ) async throws -> R {
        let logger = self.logger
        // Whichever comes first resumes the caller: the work's end or its deadline.
        let outcome = OnceResult<R>()
        let task = Task {
            let result: Result<R, any Error>
            do { result = .success(try await work()) } catch { result = .failure(error) }
            outcome.resume(with: result)
        }
        let timer = deadlines.at(deadline) {
            guard outcome.resume(with: .failure(TransactionTimedOut())) else { return }
            logger.warning("a query outlived its deadline; abandoning it (its connection may have been killed)")
            task.cancel()
            Task { await abandon() }
        }
        defer { deadlines.cancel(timer) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
                outcome.install(continuation)
            }
        } onCancel: {
            task.cancel()
        }
    }
}

/// A transaction or read that outlived ``ProjectionRuntime/Configuration/transactionTimeout``: transient.
struct TransactionTimedOut: Error {}

/// The connection a transaction runs on, for the watchdog to close.
final class ConnectionSlot: Sendable {
    private let connection = Mutex<PostgresConnection?>(nil)
    func set(_ value: PostgresConnection) { connection.withLock { $0 = value } }
    func get() -> PostgresConnection? { connection.withLock { $0 } }
}
