import CLibPQ
import Foundation

extension AppendStatement {
    /// The append's parameters for a libpq connection (``HeldLibPQConnections``), in the order and
    /// with the values its postgres-nio bindings have.
    var libpqParameters: LibPQParameters {
        var parameters = LibPQParameters(capacity: 11)
        parameters.append(stream)
        if events.count == 1, let event = events.first {
            parameters.append(event.id)
            parameters.append(event.eventType.rawValue)
            parameters.append(Int32(event.schemaVersion))
            parameters.append(String(decoding: event.payload, as: UTF8.self))
            parameters.append(metadata[0])
            parameters.append(event.recordedAt)
        } else {
            parameters.append(ids: events.map(\.id))
            parameters.append(texts: events.map(\.eventType.rawValue))
            parameters.append(integers: events.map { Int32($0.schemaVersion) })
            parameters.append(texts: events.map { String(decoding: $0.payload, as: UTF8.self) })
            parameters.append(texts: metadata)
            parameters.append(dates: events.map(\.recordedAt))
        }
        parameters.append(mode)
        parameters.append(expected)
        if let notification {
            parameters.append(notification.channel)
            parameters.append(notification.payload)
        }
        return parameters
    }

    /// The statements a libpq append connection prepares for the log of `texts` and `group`: the
    /// appends of one event and of several, plain and notifying, and the group's.
    static func libpqPrepared(_ texts: AppendTexts, group: StatementText) -> [ReactorConnection.Prepared] {
        [texts.one, texts.many, texts.oneNotifying, texts.manyNotifying, group].map(ReactorConnection.Prepared.init)
    }

    /// The rows a libpq result holds (text: position, transaction id, stream version).
    static func rows(of result: OpaquePointer) throws -> [Row] {
        try (0..<PQntuples(result)).map { row in
            (try LibPQRows.column(result, row, 0), try LibPQRows.column(result, row, 1), try LibPQRows.column(result, row, 2))
        }
    }
}

extension GroupAppendStatement {
    /// The group's parameters for a libpq connection, as its postgres-nio bindings.
    var libpqParameters: LibPQParameters {
        var parameters = LibPQParameters(capacity: 10)
        parameters.append(texts: requests.map(\.stream))
        parameters.append(texts: requests.map(\.mode))
        parameters.append(integers: requests.map { $0.expected ?? -1 })
        let columns = eventColumns
        parameters.append(integers: columns.index)
        parameters.append(ids: columns.ids)
        parameters.append(texts: columns.types)
        parameters.append(integers: columns.versions)
        parameters.append(texts: columns.payloads)
        parameters.append(texts: columns.metadata)
        parameters.append(dates: columns.recorded)
        return parameters
    }

    /// The rows a libpq result holds (text: stream, position, transaction id, stream version).
    static func rows(of result: OpaquePointer) throws -> [Row] {
        try (0..<PQntuples(result)).map { row in
            (
                try LibPQRows.column(result, row, 0), try LibPQRows.column(result, row, 1), try LibPQRows.column(result, row, 2),
                try LibPQRows.column(result, row, 3)
            )
        }
    }
}

/// Reading a libpq result's text cells.
enum LibPQRows {
    static func column<Value: LosslessStringConvertible>(_ result: OpaquePointer, _ row: Int32, _ index: Int32) throws -> Value {
        guard PQgetisnull(result, row, index) == 0, let value = Value(String(cString: PQgetvalue(result, row, index))) else {
            throw LibPQError(connectionLost: "an append returned an unreadable row")
        }
        return value
    }
}
