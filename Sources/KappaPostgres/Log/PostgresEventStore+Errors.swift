import Kappa
import PostgresNIO

extension PostgresEventStore {
    /// Maps a driver error to an `EventStoreError` that names the stream.
    static func translate(_ error: PSQLError, stream: StreamID?) -> EventStoreError {
        // A closed connection, or a session the server ended: the same test the runtime retries by.
        if isConnectionLoss(error) || error.code == .poolClosed {
            var lost = connectionLost(stream: stream, detail: error.serverInfo?[.message])
            lost.underlying = DriverError(error)
            return lost
        }
        return translate(
            state: error.sqlState, constraint: error.serverInfo?[.constraintName], detail: error.serverInfo?[.message] ?? "\(error.code)",
            stream: stream, underlying: DriverError(error))
    }

    /// Maps an error of a libpq append connection to an `EventStoreError` that names the stream.
    static func translate(_ error: LibPQError, stream: StreamID?) -> EventStoreError {
        if isConnectionLoss(error) {
            var lost = connectionLost(stream: stream, detail: error.primary ?? error.message)
            lost.underlying = error
            return lost
        }
        return translate(
            state: error.sqlState.map(PostgresError.Code.init(raw:)), constraint: error.constraint, detail: error.primary ?? error.message,
            stream: stream, underlying: error)
    }

    private static func translate(
        state: PostgresError.Code?, constraint: String?, detail: String, stream: StreamID?, underlying: any Error & Sendable
    ) -> EventStoreError {
        let name = stream?.rawValue
        switch (state, constraint) {
        case (.uniqueViolation, "events_stream_version_key"):
            var conflict = EventStoreError(
                .versionConflict, stream: name,
                message: "another append took the same version of stream '\(name ?? "?")'")
            conflict.underlying = underlying
            return conflict
        case (.uniqueViolation, "events_event_id_key"):
            return EventStoreError(.duplicateEventID, stream: name, message: "an event id is already stored", underlying: underlying)
        case (.kappaOrderNeedsRepair, _):
            return EventStoreError(.orderNeedsRepair, stream: name, message: detail, underlying: underlying)
        case (.undefinedTable, _), (.invalidSchemaName, _):
            return EventStoreError(
                .database, stream: name,
                message: "the event log's tables are missing (\(detail)); run PostgresEventStore.migrate() first", underlying: underlying)
        case (let state?, _) where state.raw.hasPrefix("22"):
            return EventStoreError(.encodingFailed, stream: name, message: "PostgreSQL refused a value: \(detail)", underlying: underlying)
        default:
            return EventStoreError(.database, stream: name, message: detail, underlying: underlying)
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
