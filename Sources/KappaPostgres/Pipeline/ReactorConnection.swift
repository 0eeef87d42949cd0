import CLibPQ
import Dispatch
import Foundation
import Synchronization

/// A libpq connection for one statement at a time, sent by the caller (non-blocking) and finished by
/// the ``LibPQReactor``: no thread of its own, no thread switch to send. Statements run prepared,
/// under names given when connecting.
package final class ReactorConnection: @unchecked Sendable {
    // `handle` is used by one operation at a time: its caller sends, then the reactor's thread
    // reads; epoll_ctl and the handlers' lock order the two.
    private let handle: OpaquePointer
    package let socket: Int32
    /// The server's process id, for tests and logs.
    package let backendPID: Int32
    /// Whether an operation is under way; a second one at once is refused.
    private let busy = Atomic<Bool>(false)
    /// Set once the connection failed or was closed: it is never used again.
    private let broken = Atomic<Bool>(false)

    private init(handle: OpaquePointer) {
        self.handle = handle
        self.socket = PQsocket(handle)
        self.backendPID = PQbackendPID(handle)
    }

    deinit {
        // libpq closes a socket it found broken (-1 then), and its number may be another's since.
        LibPQReactor.shared.forget(PQsocket(handle), owner: ObjectIdentifier(self))
        PQfinish(handle)
    }

    /// A statement to prepare when connecting: its name, text and parameter types (OIDs).
    package struct Prepared: Sendable {
        package let name: String
        package let sql: String
        package let types: [UInt32]

        package init(name: String, sql: String, types: [UInt32]) {
            self.name = name
            self.sql = sql
            self.types = types
        }

        /// One of the store's prepared statements, under its own name.
        init(_ text: StatementText) {
            self.init(name: text.name, sql: text.sql, types: text.types.map(\.rawValue))
        }
    }

    /// Opens a connection (libpq's `connectionString`, the `PG*` variables filling in the rest) and
    /// prepares `statements` on it; the blocking part runs on a dispatch queue, off Swift's pool.
    /// Cancelled, it returns at once (a connection still opening is closed once open).
    package static func connect(_ connectionString: String, applicationName: String, preparing statements: [Prepared]) async throws -> ReactorConnection {
        let outcome = OnceResult<ReactorConnection>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                outcome.install(continuation)
                DispatchQueue.global().async {
                    outcome.resume(with: Result { try open(connectionString, applicationName: applicationName, preparing: statements) })
                }
            }
        } onCancel: {
            outcome.resume(with: .failure(CancellationError()))
        }
    }

    private static func open(_ connectionString: String, applicationName: String, preparing statements: [Prepared]) throws -> ReactorConnection {
        // The connection string's own settings override these (later wins): of several hosts, the one that accepts writes.
        // TCP keep-alives after 30 s idle: a held connection a NAT or a balancer dropped without a
        // word is found within a minute, not hours.
        // An append whose request the server does not acknowledge within 30 s fails, rather than
        // waiting for TCP to give up. Text in UTF-8, whatever PGCLIENTENCODING says.
        let keywords = [
            "connect_timeout", "target_session_attrs", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
            "client_encoding", "dbname", "fallback_application_name",
        ]
        let values = ["10", "read-write", "30", "10", "3", "30000", "UTF8", connectionString, applicationName]
        let handle = withCStrings(keywords) { keys in withCStrings(values) { PQconnectdbParams(keys, $0, 1) } }
        guard let handle else { throw LibPQError(connectionLost: "libpq could not allocate a connection") }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = LibPQError.message(of: handle)
            PQfinish(handle)
            throw LibPQError(connectionLost: "could not connect: \(message)")
        }
        // Notices (a trigger's) are not printed on the process's standard error, libpq's default.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        let connection = ReactorConnection(handle: handle)
        for statement in statements {
            let result = statement.types.map { Oid($0) }.withUnsafeBufferPointer {
                PQprepare(handle, statement.name, statement.sql, Int32(statement.types.count), $0.baseAddress)
            }
            defer { PQclear(result) }
            guard let result, PQresultStatus(result) == PGRES_COMMAND_OK else {
                throw result.map { LibPQError(result: $0) } ?? LibPQError(connectionLost: "could not prepare: \(LibPQError.message(of: handle))")
            }
        }
        guard PQsetnonblocking(handle, 1) == 0 else { throw LibPQError(connectionLost: "could not make the connection non-blocking") }
        return connection
    }

    /// Reads what arrived on the idle connection; `false` (and the connection unusable) when the
    /// server closed it. Only while no statement is under way.
    func readWhileIdle() -> Bool {
        guard PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK else {
            broken.store(true, ordering: .relaxed)
            return false
        }
        return true
    }

    /// Marks the connection unusable: it is closed instead of used again.
    func markBroken() { broken.store(true, ordering: .relaxed) }

    /// Whether the connection may run another statement.
    package var isUsable: Bool { !broken.load(ordering: .relaxed) }

    /// Runs the statement prepared as `name` with `parameters` and decodes its result (on the
    /// reactor's thread) with `decode`; its cells as text, or binary with `binaryResults`.
    /// - Throws: ``LibPQError``: the server's error, or `connectionLost` (the outcome then unknown).
    package func execute<R: Sendable>(
        prepared name: String, _ parameters: LibPQParameters, binaryResults: Bool = false,
        decode: @escaping @Sendable (OpaquePointer) throws -> R
    ) async throws -> R {
        guard !busy.exchange(true, ordering: .acquiring) else { throw LibPQError(connectionLost: "the connection is running another statement") }
        defer { busy.store(false, ordering: .releasing) }
        guard !broken.load(ordering: .relaxed) else { throw LibPQError(connectionLost: "the connection was lost") }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            let sent = parameters.withUnsafeArrays { count, values, lengths, formats in
                PQsendQueryPrepared(handle, name, count, values, lengths, formats, binaryResults ? 1 : 0)
            }
            // Not sent in full (no Sync reached the server): nothing can have run.
            guard sent == 1 else { return continuation.resume(throwing: fail("could not send the statement", sent: false)) }
            let operation = Operation(connection: self, decode: decode, continuation: continuation)
            let flushed = PQflush(handle)
            guard flushed >= 0 else { return continuation.resume(throwing: fail("could not send the statement", sent: false)) }
            guard LibPQReactor.shared.watch(socket, owner: ObjectIdentifier(self), for: flushed == 1 ? .readWrite : .read, operation.step) else {
                return continuation.resume(throwing: fail("could not watch the connection's socket", sent: flushed == 0))
            }
        }
    }

    /// A statement in flight: what the reactor calls as its socket becomes ready.
    private final class Operation<R: Sendable>: @unchecked Sendable {
        // Used on the reactor's thread only, once armed.
        let connection: ReactorConnection
        let decode: @Sendable (OpaquePointer) throws -> R
        let continuation: CheckedContinuation<R, any Error>
        var value: Result<R, any Error>?

        init(connection: ReactorConnection, decode: @escaping @Sendable (OpaquePointer) throws -> R, continuation: CheckedContinuation<R, any Error>) {
            self.connection = connection
            self.decode = decode
            self.continuation = continuation
        }

        @Sendable func step() -> LibPQReactor.Interest? {
            let handle = connection.handle
            let flushed = PQflush(handle)
            guard flushed >= 0, PQconsumeInput(handle) == 1 else { return finish(throwing: connection.fail("the connection closed")) }
            if flushed == 1 { return .readWrite }
            while PQisBusy(handle) == 0 {
                guard let result = PQgetResult(handle) else { return end() }
                defer { PQclear(result) }
                // The first result is the statement's; a NULL ends them.
                guard value == nil else { continue }
                let status = PQresultStatus(result)
                value = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK ? Result { try decode(result) } : .failure(LibPQError(result: result))
            }
            return .read
        }

        /// The statement's results have all come: its value, or the connection's loss.
        private func end() -> LibPQReactor.Interest? {
            // A session the server ended (pg_terminate_backend: an error, then the socket closes).
            if PQstatus(connection.handle) != CONNECTION_OK {
                let error: LibPQError
                if case .failure(let failure as LibPQError) = value {
                    error = LibPQError(connectionLost: failure.message)
                } else {
                    error = connection.fail("the connection closed")
                }
                connection.broken.store(true, ordering: .relaxed)
                return finish(throwing: error)
            }
            guard let value else { return finish(throwing: connection.fail("the statement returned no result")) }
            if case .failure(let error as LibPQError) = value, error.connectionLost { connection.broken.store(true, ordering: .relaxed) }
            continuation.resume(with: value)
            return nil
        }

        private func finish(throwing error: LibPQError) -> LibPQReactor.Interest? {
            continuation.resume(throwing: error)
            return nil
        }
    }

    /// The connection's failure, the connection unusable from now on. `sent: false`: the statement
    /// did not reach the server whole, so it cannot have run (``LibPQError/notSent``).
    private func fail(_ what: String, sent: Bool = true) -> LibPQError {
        broken.store(true, ordering: .relaxed)
        var error = LibPQError(connectionLost: "\(what): \(LibPQError.message(of: handle))")
        error.notSent = !sent
        return error
    }
}
