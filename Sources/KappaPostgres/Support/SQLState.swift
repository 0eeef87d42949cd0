import PostgresNIO

/// The framework's own SQLSTATEs, raised by its migrations' functions and triggers.
extension PostgresError.Code {
    /// The log refuses to change or delete a stored event (`events_refuse_change`).
    package static let kappaLogIsAppendOnly: Self = "KP001"
    /// The log's order must be repaired before appends go on (a restore into another cluster).
    package static let kappaOrderNeedsRepair: Self = "KP002"
    /// An insert would leave a gap in a stream's versions.
    package static let kappaStreamVersionGap: Self = "KP003"
    /// A single-statement batch's lease was lost: its writes fail with it (`lease_lost()`).
    package static let kappaLeaseLost: Self = "KL001"
}

/// Codes postgres-nio does not name.
extension PostgresError.Code {
    /// The server ended a session idle longer than `idle_session_timeout` (PostgreSQL 14+).
    package static let idleSessionTimeout: Self = "57P05"
}

extension PSQLError {
    /// The SQLSTATE the server sent with the error, if it sent one.
    package var sqlState: PostgresError.Code? {
        serverInfo?[.sqlState].map(PostgresError.Code.init(raw:))
    }
}
