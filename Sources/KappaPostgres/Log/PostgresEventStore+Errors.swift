import Kappa
import PostgresNIO

extension PostgresEventStore {
    /// Maps a driver error to an `EventStoreError` that names the stream.
    static func translate(_ error: PSQLError, stream: StreamID?) -> EventStoreError {
        let name = stream?.rawValue
        // A closed connection, or a session the server ended: the same test the runtime retries by.
        if isConnectionLoss(error) || error.code == .poolClosed {
            var lost = connectionLost(stream: stream, detail: error.serverInfo?[.message])
            lost.underlying = DriverError(error)
            return lost
        }
        let state = error.sqlState
        let constraint = error.serverInfo?[.constraintName]
        let detail = error.serverInfo?[.message] ?? "\(error.code)"
        switch (state, constraint) {
        case (.uniqueViolation, "events_stream_version_key"):
            var conflict = EventStoreError(
                .versionConflict, stream: name,
                message: "another append took the same version of stream '\(name ?? "?")'")
            conflict.underlying = DriverError(error)
            return conflict
        case (.uniqueViolation, "events_event_id_key"):
            return EventStoreError(.duplicateEventID, stream: name, message: "an event id is already stored", underlying: DriverError(error))
        case (.kappaOrderNeedsRepair, _):
            return EventStoreError(.orderNeedsRepair, stream: name, message: detail, underlying: DriverError(error))
        case (.undefinedTable, _), (.invalidSchemaName, _):
            return EventStoreError(
                .database, stream: name,
                message: "the event log's tables are missing (\(detail)); run PostgresEventStore.migrate() first", underlying: DriverError(error))
        case (let state?, _) where state.raw.hasPrefix("22"):
            return EventStoreError(.encodingFailed, stream: name, message: "PostgreSQL refused a value: \(detail)", underlying: DriverError(error))
        default:
            return EventStoreError(.database, stream: name, message: detail, underlying: DriverError(error))
        }
    }
}

extension PostgresEventStore {
    /// The connection went away during a statement: it happened fully or not at all.
    static func connectionLost(stream: StreamID?, detail: String?) -> EventStoreError {
        EventStoreError(
            .connectionLost, stream: stream?.rawValue,
            message:
                "the connection to PostgreSQL was lost\(detail.map { " (\($0))" } ?? ""); an append either happened fully or not at all, and re-sending it with the same event ids is safe"
        )
    }
}

/// A driver error kept as text: `PSQLError` carries the query and its binds, which are not ours to keep.
struct DriverError: Error, Sendable, CustomStringConvertible {
    let description: String
    init(_ error: PSQLError) {
        let info = error.serverInfo
        // The hint too: a migration's says what an administrator must do (0005_roles: the roles to create).
        description =
            [info?[.sqlState], info?[.message], info?[.detail], info?[.hint].map { "hint: \($0)" }]
            .compactMap { $0 }.joined(separator: ": ")
            .nonEmpty ?? "\(error.code)"
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
