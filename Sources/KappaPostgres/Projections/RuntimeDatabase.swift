import Foundation
import Kappa
import Logging
import PostgresNIO
import Synchronization

/// The runtime's way to its two databases: transactions and reads on the read models' (each under
/// the ``ConnectionGuard``, with the idle bound from its `BEGIN` and the watchdog), reads of the log.
///
/// With a watchdog, a transaction still running after ``ProjectionRuntime/Configuration/transactionTimeout``
/// has its connection closed (so it can never commit) and is abandoned; the caller gets a transient
/// fault and retries on a new connection. After `pg_terminate_backend`, a query on the killed
/// connection is sometimes never failed by the driver; without the watchdog that would wedge a
/// runner for good.
struct RuntimeDatabase: Sendable {
    let log: PostgresEventStore
    let readModels: PostgresClient
    let transactionTimeout: Duration
    /// The watchdog's deadlines (shared with read-your-writes timeouts).
    let deadlines: Deadlines
    /// The idle bound every read-model transaction has from its `BEGIN`.
    let idleLimit: SessionIdleLimit
    let logger: Logger

    /// Runs `body` in a read-model transaction; its errors, and the driver's, come back as they are.
    ///
    /// Batches commit without waiting for the disk unless ``ProjectionRuntime/Configuration/synchronousReadModelCommits``:
    /// their checkpoint's statement sets that (``ProjectionQueries/commitMode(asynchronous:)``), which saves
    /// every batch a round trip; other transactions (set-up, switches) commit durably.
    /// `watchdog: false` runs it without the watchdog (index builds at the end of a rebuild).
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
            return try await withTaskCancellationHandler {
                try await work.value
            } onCancel: {
                work.cancel()
            }
        }
        return try await withWatchdog(
            abandon: {
                if let connection = opened.get() { try? await connection.close() } // so it can never commit
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
    /// on another connection).
    func withWatchdog<R: Sendable>(
        abandon: @escaping @Sendable () async -> Void = {}, _ work: @escaping @Sendable () async throws -> R
    ) async throws -> R {
        try await withDeadline(.now + transactionTimeout, abandon: abandon, work)
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
