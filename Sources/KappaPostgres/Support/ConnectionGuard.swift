import NIOCore
import PostgresNIO
import Synchronization

/// Fails queries on a connection that has closed under them.
///
/// postgres-nio 1.33 never completes a query written to a connection whose channel has finished
/// closing (the write is dropped with its error sent to no one, and cancelling the query's task
/// does not end it), and its pool can hand out such a connection when a release races the close.
/// Seen here after `pg_terminate_backend`: appends and reads that hung for good. ``run(on:_:)``
/// runs the work in a task of its own and, once the connection's `closeFuture` has completed and
/// the work has not ended 50 ms later (time for a query already under way to fail with its own
/// error), throws ``ConnectionClosed`` and leaves the task behind, cancelled.
///
/// One `closeFuture` callback per connection, registered on the first guarded call and dropped
/// when the connection closes: a callback per call would pile up on a long-lived pooled connection.
package final class ConnectionGuard: Sendable {
    package static let shared = ConnectionGuard()

    /// How long after the close a query still running is given to fail by itself.
    static let grace = TimeAmount.milliseconds(50)

    private struct State {
        var next: UInt64 = 0
        /// Per open connection that was guarded: the connection itself — held, so that its address,
        /// the key, cannot be reused by a new connection before its entry goes (a new connection
        /// at a closed one's address had its first statement failed by the old one's close) —
        /// and its calls in flight, each with what fails it.
        var connections: [ObjectIdentifier: (connection: PostgresConnection, calls: [UInt64: @Sendable () -> Void])] = [:]
    }

    private let state = Mutex(State())

    /// Runs `work`, which uses `connection`, and returns its result.
    /// - Throws: ``ConnectionClosed`` when the connection closed and `work` did not end; else what `work` throws.
    package func run<R: Sendable>(on connection: PostgresConnection, _ work: @escaping @Sendable () async throws -> R) async throws -> R {
        if connection.isClosed { throw ConnectionClosed() }
        let outcome = OnceResult<R>()
        let task = Task {
            let result: Result<R, any Error>
            do { result = .success(try await work()) } catch { result = .failure(error) }
            outcome.resume(with: result)
        }
        let key = ObjectIdentifier(connection)
        let (id, watch) = state.withLock { state -> (UInt64, Bool) in
            state.next += 1
            let watch = state.connections[key] == nil
            state.connections[key, default: (connection, [:])].calls[state.next] = {
                if outcome.resume(with: .failure(ConnectionClosed())) { task.cancel() }
            }
            return (state.next, watch)
        }
        if watch {
            connection.closeFuture.whenComplete { [self] _ in
                connection.eventLoop.scheduleTask(in: Self.grace) {
                    let failing = self.state.withLock { $0.connections.removeValue(forKey: key) }
                    for fail in failing?.calls.values ?? [:].values { fail() }
                }
            }
        }
        defer { state.withLock { _ = $0.connections[key]?.calls.removeValue(forKey: id) } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { outcome.install($0) }
        } onCancel: {
            task.cancel()
        }
    }
}

/// The connection to PostgreSQL closed under a query that the driver then never ended: the
/// connection is lost, and whether the statement ran is unknown. A read may be sent again; the
/// runtime retries its own work after one. (The event store reports it as
/// `EventStoreError.Code.connectionLost` instead.)
public struct ConnectionClosed: Error, CustomStringConvertible, Sendable {
    public var description: String { "the connection to PostgreSQL closed under a query" }
}

extension PostgresClient {
    /// `query` on a pooled connection, every row decoded, under the ``ConnectionGuard``: a connection
    /// that closes under it fails it at once with ``ConnectionClosed`` instead of never.
    ///
    /// `resending`: the statement is a read, or one whose second run changes nothing the first did
    /// not; when the connection is lost before it answered (the pool can hand out a connection the
    /// server has just closed), it is sent again on another connection, after the pauses of ``resendPauses``.
    package func guardedRows<Row: Sendable>(
        _ query: PostgresQuery, logger: Logger, resending: Bool = false, _ decode: @escaping @Sendable (PostgresRow) throws -> Row
    ) async throws -> [Row] {
        var attempt = 1
        while true {
            do {
                return try await withConnection { connection in
                    try await ConnectionGuard.shared.run(on: connection) { try await connection.allRows(query, logger: logger, decode) }
                }
            } catch  where resending && attempt < resendPauses.count + 1 && isConnectionLoss(error) {
                logger.debug("a read lost its connection; sending it again", metadata: ["error": "\(String(reflecting: error))"])
                // A pause first: a pool whose idle connections were all killed at once learns of each
                // close only as it arrives, and would hand out the next dead one straight away.
                try await Task.sleep(for: resendPauses[attempt - 1])
                attempt += 1
            }
        }
    }
}

/// The pauses before each resend of a statement whose connection was lost: four sends in all, over
/// about a third of a second.
package let resendPauses: [Duration] = [.milliseconds(10), .milliseconds(50), .milliseconds(250)]
