import CLibPQ
import Foundation

extension AppendStatement {
    /// The one-event append's parameters for a libpq connection (``HeldLibPQConnections``), in the
    /// order and with the values its postgres-nio bindings have.
    var libpqParameters: LibPQParameters {
        var parameters = LibPQParameters(capacity: 11)
        let event = events[0]
        parameters.append(stream)
        parameters.append(event.id)
        parameters.append(event.eventType.rawValue)
        parameters.append(Int32(event.schemaVersion))
        parameters.append(String(decoding: event.payload, as: UTF8.self))
        parameters.append(metadata[0])
        parameters.append(event.recordedAt)
        parameters.append(mode)
        parameters.append(expected)
        if let notification {
            parameters.append(notification.channel)
            parameters.append(notification.payload)
        }
        return parameters
    }

    /// The statements a libpq append connection prepares for the log of `texts`: the one-event
    /// append, plain and notifying.
    static func libpqPrepared(_ texts: AppendTexts) -> [ReactorConnection.Prepared] {
        [texts.one, texts.oneNotifying].map { .init(name: $0.name, sql: $0.sql, types: $0.types.map(\.rawValue)) }
    }

    /// The rows a libpq result holds (text: position, transaction id, stream version).
    static func rows(of result: OpaquePointer) throws -> [Row] {
        try (0..<PQntuples(result)).map { row in
            func column<Value: LosslessStringConvertible>(_ index: Int32, as: Value.Type) throws -> Value {
                guard PQgetisnull(result, row, index) == 0, let value = Value(String(cString: PQgetvalue(result, row, index))) else {
                    throw LibPQError(connectionLost: "the append returned an unreadable row")
                }
                return value
            }
            return (try column(0, as: Int64.self), try column(1, as: UInt64.self), try column(2, as: Int64.self))
        }
    }
}
