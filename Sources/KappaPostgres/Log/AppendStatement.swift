import Foundation
import Kappa
import PostgresNIO

/// An append as a prepared statement: parsed and planned once per connection, then sent as Bind and
/// Execute only. One statement reads the stream's head, checks the expectation and inserts, so a
/// concurrent append of the same version fails on `events_stream_version_key` (23505); no row back
/// means the expectation did not hold.
///
/// Measured with pgbench at 32 writers (fsync on): this statement prepared ran at ~90 % of a
/// prepared bare INSERT and ~135 % of an unprepared one; the PL/pgSQL function it replaces on this
/// path ran at ~80 % prepared.
///
/// Its notifying form also sends `NOTIFY` in the append's own transaction, when the ``LogNotifier``
/// hands the append its next notification (see ``LogNotifier/claimNotification()``).
///
/// Its SQL names the log's schema, so its text is bound per call (``SchemaBoundStatement``). Tests pin
/// that stores on two schemas sharing one client's connections each write their own log.
struct AppendStatement: SchemaBoundStatement {
    static let text = TaskLocal<StatementText?>(wrappedValue: nil)

    typealias Row = (position: Int64, transaction: UInt64, version: Int64)

    let stream: String
    let events: [NewEvent]
    let metadata: [String]
    let mode: String
    let expected: Int64?
    /// The channel and payload of the `NOTIFY` the append carries; `nil` for none.
    var notification: (channel: String, payload: String)?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 9)
        bindings.append(stream)
        if events.count == 1, let event = events.first {
            bindings.append(event.id)
            bindings.append(event.eventType.rawValue)
            bindings.append(Int32(event.schemaVersion))
            bindings.append(String(decoding: event.payload, as: UTF8.self))
            bindings.append(metadata[0])
            bindings.append(event.recordedAt)
        } else {
            bindings.append(events.map(\.id))
            bindings.append(events.map(\.eventType.rawValue))
            bindings.append(events.map { Int32($0.schemaVersion) })
            bindings.append(events.map { String(decoding: $0.payload, as: UTF8.self) })
            bindings.append(metadata)
            bindings.append(events.map(\.recordedAt))
        }
        bindings.append(mode)
        bindings.append(expected)
        if let notification {
            bindings.append(notification.channel)
            bindings.append(notification.payload)
        }
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (position, transaction, version) = try row.decode((Int64, EventCells.XID8, Int64).self)
        return (position, transaction.value, version)
    }

    /// The columns an append inserts, in the order its statements give them.
    static let columns = "(event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)"

    /// Whether an append whose expectation is `mode` (`any`, `exists` or `exact`) and `expected`
    /// holds for a stream at version `head` (SQL expressions all three).
    static func expectation(mode: String, head: String, expected: String) -> String {
        "CASE \(mode) WHEN 'any' THEN true WHEN 'exists' THEN \(head) > 0 ELSE \(head) = \(expected) END"
    }

    /// The SQL texts for the log in `events` (a quoted, qualified table name), for one event and for
    /// several, without and with the notification.
    static func texts(events: String, schema: String) -> AppendTexts {
        let suffix = StatementText.suffix(for: schema)
        let head = "WITH head AS (SELECT coalesce(max(e.stream_version), 0) AS version FROM \(events) e WHERE e.stream_id = $1)"
        let expectation = Self.expectation(mode: "$8", head: "head.version", expected: "$9")
        let returning = "RETURNING ev.position, ev.transaction_id, ev.stream_version"
        let one = """
            INSERT INTO \(events) AS ev \(Self.columns)
            SELECT $2, $1, head.version + 1, $3, $4, $5::json, $6::json, $7 FROM head
            WHERE \(expectation)
            \(returning)
            """
        let many = """
            INSERT INTO \(events) AS ev \(Self.columns)
            SELECT u.event_id, $1, head.version + u.n, u.event_type, u.schema_version, u.payload::json, u.metadata::json, u.recorded_at
            FROM head, unnest($2::uuid[], $3::text[], $4::int4[], $5::text[], $6::text[], $7::timestamptz[])
                WITH ORDINALITY AS u(event_id, event_type, schema_version, payload, metadata, recorded_at, n)
            WHERE \(expectation)
            \(returning)
            """
        // The notification is sent only if a row was inserted; `rang` is one row then, and the
        // cross join returns the inserted rows in their order.
        func notifying(_ insert: String) -> String {
            """
            \(head), ins AS (
            \(insert)
            ), rang AS (SELECT pg_notify($10, $11) FROM (SELECT FROM ins LIMIT 1) AS one)
            SELECT ins.position, ins.transaction_id, ins.stream_version FROM ins CROSS JOIN rang
            """
        }
        let oneTypes: [PostgresDataType] = [.text, .uuid, .text, .int4, .text, .text, .timestamptz, .text, .int8]
        let manyTypes: [PostgresDataType] = [.text, .uuidArray, .textArray, .int4Array, .textArray, .textArray, .timestamptzArray, .text, .int8]
        return AppendTexts(
            one: StatementText(name: "kappa_append_one_\(suffix)", sql: "\(head)\n\(one)", types: oneTypes),
            many: StatementText(name: "kappa_append_many_\(suffix)", sql: "\(head)\n\(many)", types: manyTypes),
            oneNotifying: StatementText(name: "kappa_notify_one_\(suffix)", sql: notifying(one), types: oneTypes + [.text, .text]),
            manyNotifying: StatementText(name: "kappa_notify_many_\(suffix)", sql: notifying(many), types: manyTypes + [.text, .text]))
    }
}

/// The prepared appends' texts for one log.
struct AppendTexts: Sendable {
    let one: StatementText
    let many: StatementText
    /// The same appends, each sending `NOTIFY` in its own transaction.
    let oneNotifying: StatementText
    let manyNotifying: StatementText

    func text(events: Int, notifying: Bool) -> StatementText {
        switch (events == 1, notifying) {
        case (true, false): one
        case (false, false): many
        case (true, true): oneNotifying
        case (false, true): manyNotifying
        }
    }
}
