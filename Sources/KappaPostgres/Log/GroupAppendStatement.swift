import Foundation
import Kappa
import PostgresNIO

/// Appends to several streams, each at its own expectation, as one prepared statement and one
/// transaction: concurrent appends sent together by ``AppendGroups``.
///
/// Each append's stream head is read and its expectation checked as in ``AppendStatement``; an
/// append whose expectation does not hold inserts nothing and the others go on (it then finds out
/// why on its own, as a lone append would). The streams are distinct, so the rows come back named
/// by stream. A concurrent append of the same version, or a duplicate event id, fails the whole
/// statement: nothing is written, and each append is sent again on its own. (`a` is materialised:
/// each stream's head is read once, not once per event.)
struct GroupAppendStatement: SchemaBoundStatement {
    static let text = TaskLocal<StatementText?>(wrappedValue: nil)

    typealias Row = (stream: String, position: Int64, transaction: UInt64, version: Int64)

    let requests: [AppendStatement]

    /// The group's events as the statement's columns: each event's append (1-based), id, type,
    /// schema version, payload, metadata and time, in the appends' order.
    struct EventColumns {
        var index: [Int32] = [], ids: [UUID] = [], types: [String] = [], versions: [Int32] = []
        var payloads: [String] = [], metadata: [String] = [], recorded: [Date] = []
    }

    var eventColumns: EventColumns {
        var columns = EventColumns()
        for (i, request) in requests.enumerated() {
            for (event, meta) in zip(request.events, request.metadata) {
                columns.index.append(Int32(i + 1))
                columns.ids.append(event.id)
                columns.types.append(event.eventType.rawValue)
                columns.versions.append(Int32(event.schemaVersion))
                columns.payloads.append(String(decoding: event.payload, as: UTF8.self))
                columns.metadata.append(meta)
                columns.recorded.append(event.recordedAt)
            }
        }
        return columns
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 10)
        bindings.append(requests.map(\.stream))
        bindings.append(requests.map(\.mode))
        // Read only for an exact expectation; -1 stands for none (arrays of optionals do not encode).
        bindings.append(requests.map { $0.expected ?? -1 })
        let columns = eventColumns
        bindings.append(columns.index)
        bindings.append(columns.ids)
        bindings.append(columns.types)
        bindings.append(columns.versions)
        bindings.append(columns.payloads)
        bindings.append(columns.metadata)
        bindings.append(columns.recorded)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (stream, position, transaction, version) = try row.decode((String, Int64, EventCells.XID8, Int64).self)
        return (stream, position, transaction.value, version)
    }

    /// The SQL text for the log in `events` (a quoted, qualified table name). Rows are inserted in
    /// the appends' order, each append's events in theirs, so positions rise with stream versions.
    static func text(events: String, schema: String) -> StatementText {
        let sql = """
            WITH a AS MATERIALIZED (
                SELECT a.i, a.stream_id,
                    coalesce((SELECT max(e.stream_version) FROM \(events) e WHERE e.stream_id = a.stream_id), 0) AS version,
                    a.mode, a.expected
                FROM unnest($1::text[], $2::text[], $3::int8[]) WITH ORDINALITY AS a(stream_id, mode, expected, i)
            ), accepted AS (
                SELECT a.i, a.stream_id, a.version FROM a
                WHERE \(AppendStatement.expectation(mode: "a.mode", head: "a.version", expected: "a.expected"))
            )
            INSERT INTO \(events) AS ev \(AppendStatement.columns)
            SELECT u.event_id, accepted.stream_id, accepted.version + row_number() OVER (PARTITION BY u.i ORDER BY u.n),
                u.event_type, u.schema_version, u.payload::json, u.metadata::json, u.recorded_at
            FROM unnest($4::int4[], $5::uuid[], $6::text[], $7::int4[], $8::text[], $9::text[], $10::timestamptz[])
                WITH ORDINALITY AS u(i, event_id, event_type, schema_version, payload, metadata, recorded_at, n)
            JOIN accepted ON accepted.i = u.i
            ORDER BY u.n
            RETURNING ev.stream_id, ev.position, ev.transaction_id, ev.stream_version
            """
        return StatementText(
            name: "kappa_append_grp_\(StatementText.suffix(for: schema))", sql: sql,
            types: [.textArray, .textArray, .int8Array, .int4Array, .uuidArray, .textArray, .int4Array, .textArray, .textArray, .timestamptzArray])
    }
}
