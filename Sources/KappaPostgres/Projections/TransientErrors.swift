import Kappa
import PostgresNIO

/// SQLSTATEs of faults that pass, by name.
package enum TransientSQLState {
    /// The server ended the session: `pg_terminate_backend`, a shutdown, a crash, or an idle bound
    /// (`idle_in_transaction_session_timeout`, `idle_session_timeout`). The client may see the
    /// server's error or only the closed connection, whichever arrives first.
    static let sessionEnded: [PostgresError.Code] = [
        .adminShutdown, .crashShutdown, .cannotConnectNow, .idleInTransactionSessionTimeout, .idleSessionTimeout,
    ]
    /// Concurrency: serialization failure, deadlock, a lock not granted in `lock_timeout` (or NOWAIT).
    static let contention: [PostgresError.Code] = [.serializationFailure, .deadlockDetected, .lockNotAvailable]
    /// Passing for other reasons: a cancelled statement (`statement_timeout`, `pg_cancel_backend`, a
    /// user's cancel), too many connections (another may be free soon).
    static let other: [PostgresError.Code] = [.queryCanceled, .tooManyConnections]
}

/// Whether `error` says the connection was lost under a statement (its outcome unknown): a read
/// may be sent again on another connection.
package func isConnectionLoss(_ error: any Error) -> Bool {
    switch error {
    case let error as PSQLError:
        switch error.code {
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .connectionError:
            return true
        default:
            guard let state = error.sqlState else { return false }
            // Class 08: connection exceptions.
            return TransientSQLState.sessionEnded.contains(state) || state.raw.hasPrefix("08")
        }
    case let error as LibPQError:
        return error.connectionLost || error.sqlState.map { TransientSQLState.sessionEnded.contains(PostgresError.Code(raw: $0)) } ?? false
    case let error as EventStoreError:
        return error.code == .connectionLost
    case is ConnectionClosed:
        return true
    default:
        return false
    }
}

/// Whether `error` is a fault that passes (a lost connection, a serialization failure, a deadlock,
/// a lock or statement timeout), so the work is retried with backoff rather than treated as a
/// poison event.
package func isTransient(_ error: any Error) -> Bool {
    if isConnectionLoss(error) { return true }
    switch error {
    case let error as PSQLError:
        guard let state = error.sqlState else { return false }
        return TransientSQLState.contention.contains(state) || TransientSQLState.other.contains(state)
    case let error as LibPQError:
        guard let state = error.sqlState.map(PostgresError.Code.init(raw:)) else { return false }
        return TransientSQLState.contention.contains(state) || TransientSQLState.other.contains(state)
    case let error as PostgresTransactionError:
        return [error.closureError, error.commitError, error.beginError, error.rollbackError]
            .contains { $0.map(isTransient) ?? false }
    case let error as HandlerFailure:
        return isTransient(error.underlying)
    case is TransactionTimedOut:
        return true
    default:
        return false
    }
}

/// Exponential backoff with full jitter.
struct Backoff: Sendable {
    let initial: Duration
    let maximum: Duration
    private(set) var attempt = 0

    init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    mutating func next() -> Duration {
        attempt += 1
        let cap = min(initial * Double(1 << min(attempt - 1, 20)), maximum)
        return cap * Double.random(in: 0.5...1)
    }

    mutating func reset() { attempt = 0 }
}
