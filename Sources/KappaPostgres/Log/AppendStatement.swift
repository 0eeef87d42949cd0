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
/// postgres-nio takes a prepared statement's name and SQL as *static* requirements, but the log's
/// schema is a value chosen at run time. So each append binds its store's text in a task-local
/// (``current``) around the driver call, which reads both on the calling task; unbound, the SQL is
/// a call that fails, never a statement on some other schema. Tests pin that stores on two schemas
/// sharing one client's connections each write their own log.
struct AppendStatement: PostgresPreparedStatement {
    /// A statement's name (distinct per schema and shape: the driver caches statements per connection
    /// by name) and SQL.
    struct Text: Sendable {
        var name: String
        let sql: String
        let types: [PostgresDataType]

        /// This text with its name in the current ``PreparedStatementGeneration``.
        var inCurrentGeneration: Text {
            var text = self
            text.name = PreparedStatementGeneration.name(name)
            return text
        }
    }

    @TaskLocal static var current: Text?

    static var name: String { current?.name ?? "kappa_append_unbound" }
    static var sql: String { current?.sql ?? "SELECT kappa_append_statement_used_without_its_schema()" }
    static var bindingDataTypes: [PostgresDataType] { current?.types ?? [] }

    typealias Row = (position: Int64, transaction: UInt64, version: Int64)

    let stream: String
    let events: [NewEvent]
    let metadata: [String]
    let mode: String
    let expected: Int64?

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
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (position, transaction, version) = try row.decode((Int64, EventCells.XID8, Int64).self)
        return (position, transaction.value, version)
    }

    /// The SQL texts for the log in `events` (a quoted, qualified table name).
    static func texts(events: String, schema: String) -> (one: Text, many: Text) {
        let suffix = statementSuffix(schema)
        let head = "WITH head AS (SELECT coalesce(max(e.stream_version), 0) AS version FROM \(events) e WHERE e.stream_id = $1)"
        let columns = "(event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)"
        let expectation = "CASE $8 WHEN 'any' THEN true WHEN 'exists' THEN head.version > 0 ELSE head.version = $9 END"
        let returning = "RETURNING ev.position, ev.transaction_id, ev.stream_version"
        let one = """
            \(head)
            INSERT INTO \(events) AS ev \(columns)
            SELECT $2, $1, head.version + 1, $3, $4, $5::jsonb, $6::jsonb, $7 FROM head
            WHERE \(expectation)
            \(returning)
            """
        let many = """
            \(head)
            INSERT INTO \(events) AS ev \(columns)
            SELECT u.event_id, $1, head.version + u.n, u.event_type, u.schema_version, u.payload::jsonb, u.metadata::jsonb, u.recorded_at
            FROM head, unnest($2::uuid[], $3::text[], $4::int4[], $5::text[], $6::text[], $7::timestamptz[])
                WITH ORDINALITY AS u(event_id, event_type, schema_version, payload, metadata, recorded_at, n)
            WHERE \(expectation)
            \(returning)
            """
        return (Text(name: "kappa_append_one_\(suffix)", sql: one,
                     types: [.text, .uuid, .text, .int4, .text, .text, .timestamptz, .text, .int8]),
                Text(name: "kappa_append_many_\(suffix)", sql: many,
                     types: [.text, .uuidArray, .textArray, .int4Array, .textArray, .textArray, .timestamptzArray, .text, .int8]))
    }

    /// What makes a statement's name unique to `schema`. Statement names are kept within PostgreSQL's
    /// 63 bytes (longer ones would be cut, and could clash).
    static func statementSuffix(_ schema: String) -> String {
        schema.utf8.count <= 40 ? schema : String(stableHash(schema), radix: 16)
    }

    /// FNV-1a, 64 bits: stable across runs and processes (unlike `Hasher`).
    private static func stableHash(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }
}
