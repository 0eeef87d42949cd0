import Kappa
import PostgresNIO

/// Whether `error` is a fault that passes (a lost connection, a serialization failure, a deadlock),
/// so the work is retried with backoff rather than treated as a poison event.
package func isTransient(_ error: any Error) -> Bool {
    switch error {
    case let error as PSQLError:
        switch error.code {
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .connectionError:
            return true
        default:
            guard let state = error.serverInfo?[.sqlState] else { return false }
            return ["40001", "40P01", "57P01", "57P02", "57P03", "53300", "55P03"].contains(state) || state.hasPrefix("08")
        }
    case let error as EventStoreError:
        return error.code == .connectionLost
    case let error as PostgresTransactionError:
        return [error.closureError, error.commitError, error.beginError, error.rollbackError]
            .contains { $0.map(isTransient) ?? false }
    case let error as HandlerFailure:
        return isTransient(error.underlying)
    case is TransactionTimedOut, is ConnectionClosed:
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
