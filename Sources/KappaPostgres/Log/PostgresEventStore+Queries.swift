import Foundation
import Kappa
import PostgresNIO

/// Every statement the PostgreSQL event store sends. Values are bound parameters; the only text put
/// into SQL is the schema, a validated and quoted identifier.
struct EventLogQueries: Sendable {
    let events: String

    init(schema: SQLIdentifier) {
        events = "\(schema.quoted).events"
    }

    /// The columns of a stored event, in the order `decodeEvent` reads them.
    static let eventColumns = """
        position, transaction_id::text::int8, event_id, stream_id, stream_version, event_type, schema_version,
        payload::text, metadata::text, recorded_at
        """
    typealias EventRow = (Int64, Int64, UUID, String, Int64, String, Int32, String, String, Date)

    /// Appends in one statement: the stream's head and the expected-version check are read in the
    /// same statement, and the unique key on (stream_id, stream_version) turns a concurrent append
    /// to the same version into a 23505 error. Returns no rows when the expectation does not hold.
    func append(_ events: [NewEvent], metadata: [String], stream: StreamID, expected: ExpectedVersion) -> PostgresQuery {
        let (mode, version): (String, Int64?) = switch expected {
        case .any: ("any", nil)
        case .streamExists: ("exists", nil)
        case .noStream: ("exact", 0)
        case .exact(let version): ("exact", version)
        }
        return """
            WITH head AS (
                SELECT coalesce(max(stream_version), 0) AS version FROM \(unescaped: self.events) WHERE stream_id = \(stream.rawValue)
            )
            INSERT INTO \(unescaped: self.events)
                (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)
            SELECT e.event_id, \(stream.rawValue), head.version + e.n, e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at
            FROM head, unnest(
                \(events.map(\.id))::uuid[], \(events.map(\.eventType.rawValue))::text[], \(events.map { Int32($0.schemaVersion) })::int4[],
                \(events.map { String(decoding: $0.payload, as: UTF8.self) })::jsonb[], \(metadata)::jsonb[], \(events.map(\.recordedAt))::timestamptz[]
            ) WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata, recorded_at, n)
            WHERE CASE \(mode)::text WHEN 'any' THEN true WHEN 'exists' THEN head.version > 0 ELSE head.version = \(version)::int8 END
            RETURNING position, transaction_id::text::int8, stream_version
            """
    }

    /// The stored events among `ids`, in log order.
    func eventsByID(_ ids: [UUID]) -> PostgresQuery {
        "SELECT stream_id, stream_version, event_id, position, transaction_id::text::int8 FROM \(unescaped: events) WHERE event_id = ANY(\(ids)::uuid[]) ORDER BY stream_version"
    }

    func streamVersion(_ stream: StreamID) -> PostgresQuery {
        "SELECT coalesce(max(stream_version), 0) FROM \(unescaped: events) WHERE stream_id = \(stream.rawValue)"
    }

    func readStream(_ stream: StreamID, from version: Int64, limit: Int) -> PostgresQuery {
        """
        SELECT \(unescaped: Self.eventColumns) FROM \(unescaped: events)
        WHERE stream_id = \(stream.rawValue) AND stream_version >= \(version)
        ORDER BY stream_version LIMIT \(limit)
        """
    }

    /// The log after a position, only below the transaction horizon: every transaction with a lower
    /// id has finished, so no event can still appear before the last one returned.
    func readLog(after position: LogPosition, limit: Int) -> PostgresQuery {
        """
        SELECT \(unescaped: Self.eventColumns) FROM \(unescaped: events)
        WHERE (transaction_id, position) > (\(String(position.transactionID))::xid8, \(position.globalPosition))
          AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY transaction_id, position LIMIT \(limit)
        """
    }

    /// Decodes a row selected with ``eventColumns``.
    static func decodeEvent(_ row: EventRow) throws -> RecordedEvent {
        let (position, transaction, id, stream, version, type, schemaVersion, payload, metadata, recordedAt) = row
        let logPosition = LogPosition(transactionID: UInt64(transaction), globalPosition: position)
        let decodedMetadata: EventMetadata
        if metadata == "{}" {
            decodedMetadata = EventMetadata()
        } else {
            do {
                decodedMetadata = try JSONDecoder().decode(EventMetadata.self, from: Data(metadata.utf8))
            } catch {
                throw EventStoreError(.decodingFailed, stream: stream, position: logPosition, eventType: type,
                                      message: "the stored metadata cannot be decoded: \(error)")
            }
        }
        return RecordedEvent(
            id: id, streamID: StreamID(unchecked: stream), streamVersion: version, position: logPosition,
            eventType: type, schemaVersion: Int(schemaVersion), payload: Data(payload.utf8),
            metadata: decodedMetadata, recordedAt: recordedAt)
    }
}
