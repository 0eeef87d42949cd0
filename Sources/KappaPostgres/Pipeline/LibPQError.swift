import CLibPQ
import Foundation

/// An error from the libpq connection of pipelined batches: the server's (with its SQLSTATE), or the
/// connection's loss (the outcome of what was in flight unknown).
package struct LibPQError: Error, CustomStringConvertible, Sendable {
    /// The SQLSTATE of the server's error; `nil` when the connection failed.
    package let sqlState: String?
    package let message: String
    /// The connection failed (closed, reset, aborted by the watchdog): nothing is known of what was sent.
    package let connectionLost: Bool

    /// The server's function that raised it (`PG_DIAG_SOURCE_FUNCTION`): never translated.
    var function: String?
    /// The statement never reached the server whole (its send failed): it cannot have run, and may
    /// be sent again elsewhere.
    var notSent = false
    /// The constraint the statement violated (`PG_DIAG_CONSTRAINT_NAME`).
    var constraint: String?
    /// The server's primary message alone (`PG_DIAG_MESSAGE_PRIMARY`), without severity or detail.
    var primary: String?

    /// A fault of the connection rather than of the statement: a session that cannot write (a
    /// standby, or a primary demoted by a failover: 25006), a prepared statement the session lost
    /// (a pooler, `DISCARD ALL`: 26000), a prepared statement whose result changed shape after the
    /// table did (0A000 raised while revalidating the cached plan).
    var isTheConnections: Bool {
        switch sqlState {
        case "25006", "26000": return true
        case "0A000": return function == "RevalidateCachedQuery"
        default: return false
        }
    }

    init(connectionLost message: String) {
        self.sqlState = nil
        self.message = message
        self.connectionLost = true
    }

    /// The error a failed result reports.
    init(result: OpaquePointer) {
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        self.sqlState = state
        self.function = PQresultErrorField(result, Int32(UInt8(ascii: "R"))).map { String(cString: $0) }
        self.constraint = PQresultErrorField(result, Int32(UInt8(ascii: "n"))).map { String(cString: $0) }
        self.primary = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
        self.message = String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
        // Class 08 (connection exceptions) and libpq's own failures, which come without a SQLSTATE.
        self.connectionLost = state == nil || state!.hasPrefix("08")
    }

    /// The connection's last error message.
    static func message(of handle: OpaquePointer) -> String {
        // Its first line: libpq adds guesses ("This probably means…") on the next ones.
        String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            .split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
    }

    package var description: String {
        sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message
    }
}

/// The first statement of a pipeline that failed, by its index (-1: the `BEGIN`; one past the last:
/// the `COMMIT`); the whole transaction was rolled back.
struct PipelineFailure: Error, CustomStringConvertible {
    let index: Int
    let error: LibPQError

    var description: String { "statement \(index + 1) of the batch failed: \(error)" }
}
