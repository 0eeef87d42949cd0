/// A place in the log's one global order.
///
/// Concurrent transactions commit out of order, so the number an event gets at insert
/// (``globalPosition``) is unique but is not by itself the order in which events become visible.
/// The log is read in the order of (``transactionID``, ``globalPosition``): a reader that hands out only
/// events of transactions below the oldest still-running one never skips an event that commits late.
public struct LogPosition: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    /// The id of the transaction that appended the event (PostgreSQL's `xid8`).
    public var transactionID: UInt64
    /// The event's unique global position, given at insert.
    public var globalPosition: Int64

    /// The place of the event at `globalPosition`, appended by transaction `transactionID`.
    public init(transactionID: UInt64, globalPosition: Int64) {
        self.transactionID = transactionID
        self.globalPosition = globalPosition
    }

    /// Before the first event.
    public static let start = LogPosition(transactionID: 0, globalPosition: 0)

    public static func < (lhs: LogPosition, rhs: LogPosition) -> Bool {
        (lhs.transactionID, lhs.globalPosition) < (rhs.transactionID, rhs.globalPosition)
    }

    public var description: String { "\(transactionID)/\(globalPosition)" }
}
