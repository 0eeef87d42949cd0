import Logging
import PostgresNIO
import Synchronization

/// The server-side bound on how long a read-model transaction of the runtime may sit idle, in force
/// from its `BEGIN`: a runner paused after its batch's first write (GC, SIGSTOP, a handler that
/// hangs between statements) holds that write's row locks, and the lease's next holder would wait
/// on them for as long as it is paused. With the bound, the server ends such a session once it has
/// been idle in its transaction for the lease's duration, and the locks go with it.
///
/// Set once per connection, for the session (`idle_in_transaction_session_timeout`, one round trip
/// the first time the runtime uses a connection), so that no batch pays a round trip for it: a
/// `SET LOCAL` would have to follow the `BEGIN`. It stays on the connection when the pool hands it
/// to the application's own code; the checkpoint statement sets the same bound locally as well.
final class SessionIdleLimit: Sendable {
    /// The bound, in milliseconds, as `idle_in_transaction_session_timeout` takes it.
    let milliseconds: Int64
    /// Connections whose session has it. Ids are unique per client; the set is bounded by the
    /// connections a pool ever opens, and cleared past `capacity` (a cleared id is set once more).
    private let limited = Mutex<Set<PostgresConnection.ID>>([])
    private let capacity = 4_096

    init(_ limit: Duration) {
        let (seconds, attoseconds) = limit.components
        milliseconds = max(1, seconds * 1_000 + attoseconds / 1_000_000_000_000_000)
    }

    /// Sets the bound on `connection`'s session, unless it was set there already.
    func apply(to connection: PostgresConnection, logger: Logger) async throws {
        guard limited.withLock({ !$0.contains(connection.id) }) else { return }
        try await connection.run(
            "SELECT set_config('idle_in_transaction_session_timeout', \(String(milliseconds)), false)", logger: logger)
        limited.withLock {
            if $0.count >= capacity { $0.removeAll() }
            $0.insert(connection.id)
        }
    }
}
