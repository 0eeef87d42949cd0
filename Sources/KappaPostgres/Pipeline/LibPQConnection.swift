import CLibPQ
import Dispatch
import Foundation
import Synchronization

/// One libpq connection to the read-model database, for pipelined batches. libpq's calls block, so
/// they run on a serial queue of the connection's own, never on Swift's cooperative pool; one batch
/// at a time (the ``PipelineConnections`` pool hands a connection to one runner at a time).
final class LibPQConnection: @unchecked Sendable {
    // `handle` is used only on `queue` (and in `deinit`, when nothing else can).
    private let handle: OpaquePointer
    private let queue: DispatchQueue
    /// The connection's socket, for ``flush()``.
    private let socket: Int32
    /// A duplicate of the socket for ``abort()`` from another thread: shutting it down ends the
    /// connection, and it stays open until `deinit`, so its number is never another socket's.
    private let abortable: Int32
    private let aborted = Atomic<Bool>(false)
    /// Whether the last operation left the connection fit for another: set on `queue` as each ends,
    /// `false` while one runs, so that a caller the watchdog gave up on never hands it on.
    private let fit = Atomic<Bool>(true)
    /// The statements prepared on this connection, by ``LibPQStatement/preparedKey``: a handler's
    /// statements are parsed and planned once per connection, not once per event. Used on `queue` only.
    private var prepared: [String: String] = [:]
    /// The most statements kept prepared; statements past it are sent unnamed (parsed each time).
    private static let maximumPrepared = 200
    /// The server's process id, for tests and logs.
    let backendPID: Int32

    private init(handle: OpaquePointer, queue: DispatchQueue) {
        self.handle = handle
        self.queue = queue
        self.socket = PQsocket(handle)
        self.abortable = dup(socket)
        self.backendPID = PQbackendPID(handle)
    }

    deinit {
        PQfinish(handle)
        if abortable >= 0 { close(abortable) }
    }

    /// Opens a connection: `connectionString` is libpq's (`host=… dbname=…`, or a `postgresql://` URL,
    /// several hosts and `target_session_attrs` included); the `PG*` environment variables fill in
    /// what it leaves out, as for `psql`.
    static func connect(_ connectionString: String, applicationName: String) async throws -> LibPQConnection {
        let queue = DispatchQueue(label: "kappa.libpq")
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                // The connection string's own connect_timeout and target_session_attrs override
                // these (later wins): of several hosts, the one that accepts writes.
                let keywords = ["connect_timeout", "target_session_attrs", "dbname", "fallback_application_name"]
                let values = ["10", "read-write", connectionString, applicationName]
                let handle = withCStrings(keywords) { keys in withCStrings(values) { PQconnectdbParams(keys, $0, 1) } }
                guard let handle else {
                    return continuation.resume(throwing: LibPQError(connectionLost: "libpq could not allocate a connection"))
                }
                guard PQstatus(handle) == CONNECTION_OK, PQsetnonblocking(handle, 1) == 0 else {
                    let message = Self.message(handle)
                    PQfinish(handle)
                    return continuation.resume(throwing: LibPQError(connectionLost: "could not connect to the read-model database: \(message)"))
                }
                continuation.resume(returning: LibPQConnection(handle: handle, queue: queue))
            }
        }
    }

    /// Whether the connection can run another pipeline: its last operation ended connected, outside
    /// any transaction, and it was not aborted. Never waits for an operation still running.
    var isReusable: Bool { fit.load(ordering: .relaxed) && !aborted.load(ordering: .relaxed) }

    /// Runs `operation` on the queue; the connection is unfit while it runs, and after it unless it
    /// ended connected, outside any transaction and out of pipeline mode.
    private func onQueue<R: Sendable>(_ operation: @escaping @Sendable () throws -> R) async throws -> R {
        fit.store(false, ordering: .relaxed)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            queue.async { [self] in
                let result = Result { try operation() }
                // Out of pipeline mode too: one left half-sent holds results the next batch would misread.
                fit.store(
                    PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE && PQpipelineStatus(handle) == PQ_PIPELINE_OFF,
                    ordering: .relaxed)
                continuation.resume(with: result)
            }
        }
    }

    /// Sends `BEGIN`, `statements`, `COMMIT` and a sync at once and reads their results: one round
    /// trip for a transaction block, in which every statement behaves as it does statement by
    /// statement (`SET LOCAL`, `LOCK TABLE`). When a statement fails, the server skips the rest up to
    /// the sync, the `COMMIT` included, and the block is rolled back (a `ROLLBACK`, a second round
    /// trip on failure only).
    /// - Throws: ``PipelineFailure`` naming the first statement that failed (-1: the `BEGIN`,
    ///   `statements.count`: the `COMMIT`), or ``LibPQError`` with `connectionLost` when the
    ///   connection failed (the outcome is then unknown).
    func pipeline(_ statements: [LibPQStatement]) async throws {
        try await onQueue { [self] in try runPipeline(statements) }
    }

    /// The first column of the first row of `sql` (a statement without parameters), as text.
    func value(_ sql: String) async throws -> String? {
        try await onQueue { [self] in
            // PQexec waits for its result even on a non-blocking connection.
            let result = PQexec(handle, sql)
            defer { PQclear(result) }
            guard let result, PQresultStatus(result) == PGRES_TUPLES_OK else {
                throw result.map { LibPQError(result: $0) } ?? lost("no result")
            }
            return PQntuples(result) > 0 && PQgetisnull(result, 0, 0) == 0 ? String(cString: PQgetvalue(result, 0, 0)) : nil
        }
    }

    /// Shuts the socket down, from any thread: a pipeline blocked on the server fails at once, and
    /// the connection is never reused. For the watchdog of a batch that outlived its timeout.
    func abort() {
        aborted.store(true, ordering: .relaxed)
        if abortable >= 0 { shutdown(abortable, Int32(SHUT_RDWR)) }
    }

    private func runPipeline(_ statements: [LibPQStatement]) throws {
        guard PQenterPipelineMode(handle) == 1 else { throw lost("could not enter pipeline mode") }
        // What each command sent answers for: the statement's index (-1: BEGIN, count: COMMIT),
        // and the name a preparation (Parse) gives it, to be kept once the server has it.
        var commands: [(index: Int, preparing: (key: String, name: String)?)] = [(-1, nil)]
        guard PQsendQueryParams(handle, "BEGIN", 0, nil, nil, nil, nil, 0) == 1 else { throw lost("could not send BEGIN") }
        var preparing: [String: String] = [:]
        for (index, statement) in statements.enumerated() {
            let key = statement.preparedKey
            var name = prepared[key] ?? preparing[key]
            if name == nil && prepared.count + preparing.count < Self.maximumPrepared {
                let new = "kappa_pipeline_\(prepared.count + preparing.count)"
                let sent = statement.withTypes { count, types in PQsendPrepare(handle, new, statement.sql, count, types) }
                guard sent == 1 else { throw lost("could not send a statement") }
                commands.append((index, (key, new)))
                preparing[key] = new
                name = new
            }
            let sent = statement.withParameters { count, types, values, lengths, formats in
                if let name {
                    PQsendQueryPrepared(handle, name, count, values, lengths, formats, 0)
                } else {
                    PQsendQueryParams(handle, statement.sql, count, types, values, lengths, formats, 0)
                }
            }
            guard sent == 1 else { throw lost("could not send a statement") }
            commands.append((index, nil))
        }
        commands.append((statements.count, nil))
        guard PQsendQueryParams(handle, "COMMIT", 0, nil, nil, nil, nil, 0) == 1 else { throw lost("could not send COMMIT") }
        guard PQpipelineSync(handle) == 1 else { throw lost("could not send the sync") }
        try flush()
        var failure: PipelineFailure?
        // Each command's results end with a NULL; then comes the sync's own result.
        for command in commands {
            var ended = false
            while let result = PQgetResult(handle) {
                defer { PQclear(result) }
                ended = true
                let status = PQresultStatus(result)
                // A statement prepared stays prepared even when the transaction then rolls back.
                if status == PGRES_COMMAND_OK, let (key, name) = command.preparing { prepared[key] = name }
                guard status == PGRES_FATAL_ERROR, failure == nil else { continue }
                failure = PipelineFailure(index: command.index, error: LibPQError(result: result))
            }
            if !ended && PQstatus(handle) != CONNECTION_OK { throw lost("the connection closed") }
        }
        guard let sync = PQgetResult(handle) else { throw lost("no sync came back") }
        let synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC
        PQclear(sync)
        guard synced, PQexitPipelineMode(handle) == 1 else { throw lost("the pipeline did not end with its sync") }
        guard let failure else { return }
        if failure.error.connectionLost { throw failure.error }
        if failure.error.isTheConnections {
            // Not the statement's fault but this connection's: retried on a new one, nothing prepared.
            aborted.store(true, ordering: .relaxed)
            throw LibPQError(connectionLost: "the connection cannot run the batch: \(failure.error.message)")
        }
        if PQtransactionStatus(handle) != PQTRANS_IDLE {
            let rollback = PQexec(handle, "ROLLBACK")
            defer { PQclear(rollback) }
            guard PQresultStatus(rollback) == PGRES_COMMAND_OK else { throw lost("could not roll the failed batch back") }
        }
        throw failure
    }

    /// Writes what libpq holds back in its non-blocking output buffer, reading the server's answers
    /// meanwhile: a large pipeline whose results fill the socket's buffer cannot deadlock.
    private func flush() throws {
        while true {
            switch PQflush(handle) {
            case 0: return
            case 1:
                var descriptor = pollfd(fd: socket, events: Int16(POLLIN | POLLOUT), revents: 0)
                guard poll(&descriptor, 1, -1) >= 0 || errno == EINTR else { throw lost("poll failed") }
                if descriptor.revents & Int16(POLLIN) != 0 && PQconsumeInput(handle) == 0 { throw lost("could not read") }
            default:
                throw lost("could not send")
            }
        }
    }

    private func lost(_ what: String) -> LibPQError {
        LibPQError(connectionLost: "\(what): \(Self.message(handle))")
    }

    private static func message(_ handle: OpaquePointer) -> String {
        String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Calls `body` with `strings` as a NULL-terminated array of C strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
