import Foundation
import Kappa
import PostgresNIO

/// Every statement the PostgreSQL event store sends. Values are bound parameters; the only text put
/// into SQL is the schema, a validated and quoted identifier.
struct EventLogQueries: Sendable {
    let events: String
    /// The horizon of the statement's snapshot (Migrations/log/0004): followers read below it. It
    /// costs a look at every open transaction once committed events wait beyond the oldest one, so
    /// live reads use ``xminHorizon`` and turn to this one only after being held back a while.
    let horizon: String
    /// The oldest transaction open anywhere on the server: at or below ``horizon``, and cheap.
    /// (A sub-select, as ``horizon`` is: the planner cannot read it while planning, so a prepared
    /// statement's generic and custom plans estimate alike, whatever the server's transactions.)
    /// In the log's order: the transaction id plus the log's offset, as `log_xid()` computes it
    /// (Migrations/log/0007), written out: the server plans a call of that SQL function afresh each
    /// time a statement runs it (its body reads a table, so it is not inlined), which cost a live
    /// page read ~90 µs of the server's time for its two uses, against ~5 µs written out.
    let xminHorizon: String
    let schemaName: String
    let appendFunction: String
    let appendOneFunction: String
    /// The prepared appends of one event and of several, without and with a notification.
    let appends: AppendTexts
    /// The prepared append of several appends to distinct streams, sent together.
    let groupAppend: StatementText
    /// The prepared read of a page of the log after a position, for followers: below the cheap
    /// ``xminHorizon``, and below ``horizon`` (`readPageRefined`).
    let readPage: StatementText
    let readPageRefined: StatementText

    init(schema: SQLIdentifier) {
        events = "\(schema.quoted).events"
        schemaName = schema.quoted
        horizon = "(SELECT \(schema.quoted).log_horizon(pg_current_snapshot()))"
        xminHorizon = "(SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::int8 + o.xid_offset)::text::xid8 FROM \(schema.quoted).log_order o)"
        appendFunction = "\(schema.quoted).append_events"
        appendOneFunction = "\(schema.quoted).append_event"
        appends = AppendStatement.texts(events: events, schema: schema.name)
        groupAppend = GroupAppendStatement.text(events: events, schema: schema.name)
        readPage = ReadPageStatement.text(events: events, horizon: xminHorizon, schema: schema.name)
        readPageRefined = ReadPageStatement.text(events: events, horizon: horizon, schema: schema.name, refined: true)
    }

    /// The columns of a stored event, in the order `decodeEvent` reads them (see ``EventCells``).
    static let eventColumns = EventCells.columns

    /// Appends through `append_event` or `append_events` (Migrations/log/0002), for stores configured
    /// without prepared statements (see ``AppendStatement`` for the other path): the head and the expected-version check
    /// are read in the same statement as the insert, and the unique key on (stream_id, stream_version)
    /// turns a concurrent append of the same version into a 23505 error. Returns no rows when the
    /// expectation does not hold.
    func append(_ events: [NewEvent], metadata: [String], stream: StreamID, expected: ExpectedVersion) -> PostgresQuery {
        let (mode, version): (String, Int64?) =
            switch expected {
            case .any: ("any", nil)
            case .streamExists: ("exists", nil)
            case .noStream: ("exact", 0)
            case .exact(let version): ("exact", version)
            }
        if events.count == 1, let event = events.first {
            return """
                SELECT out_position, out_transaction_id, out_stream_version FROM \(unescaped: appendOneFunction)(
                    \(stream.rawValue), \(event.id), \(event.eventType.rawValue), \(Int32(event.schemaVersion)),
                    \(String(decoding: event.payload, as: UTF8.self))::json, \(metadata[0])::json, \(event.recordedAt),
                    \(mode)::text, \(version)::int8)
                """
        }
        return """
            SELECT out_position, out_transaction_id, out_stream_version FROM \(unescaped: appendFunction)(
                \(stream.rawValue), \(events.map(\.id))::uuid[], \(events.map(\.eventType.rawValue))::text[],
                \(events.map { Int32($0.schemaVersion) })::int4[], \(events.map { String(decoding: $0.payload, as: UTF8.self) })::json[],
                \(metadata)::json[], \(events.map(\.recordedAt))::timestamptz[], \(mode)::text, \(version)::int8)
            ORDER BY out_position
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

    /// The log after a position, only below the horizon: every transaction with a lower id that may
    /// append here has finished, so no event can still appear before the last one returned.
    /// - Parameter packed: One row and cell for the whole page (see ``EventPage``), and a third cell:
    ///   whether committed events wait beyond the horizon (an older writing transaction is still open;
    ///   the index answers it with one probe). Else a row an event.
    /// - Parameter refined: Below ``horizon`` rather than the cheaper ``xminHorizon``.
    func readLog(after position: LogPosition, limit: Int, packed: Bool, refined: Bool = false) -> PostgresQuery {
        let horizon = refined ? self.horizon : xminHorizon
        let (head, tail) = Self.page(packed: packed, heldBack: Self.heldBack(events, horizon: horizon))
        return """
            \(unescaped: head) \(unescaped: events)
            WHERE (transaction_id, position) > (\(String(position.transactionID))::xid8, \(position.globalPosition))
              AND transaction_id < \(unescaped: horizon)
            ORDER BY transaction_id, position LIMIT \(limit)\(unescaped: tail)
            """
    }

    /// The log between two positions, in its order, for a bulk rebuild (its workers share the read). `through`
    /// was below the horizon when the rebuild started, so no event can still appear before it.
    func readLog(after position: LogPosition, through target: LogPosition, limit: Int, packed: Bool) -> PostgresQuery {
        let (head, tail) = Self.page(packed: packed)
        return """
            \(unescaped: head) \(unescaped: events)
            WHERE (transaction_id, position) > (\(String(position.transactionID))::xid8, \(position.globalPosition))
              AND (transaction_id, position) <= (\(String(target.transactionID))::xid8, \(target.globalPosition))
            ORDER BY transaction_id, position LIMIT \(limit)\(unescaped: tail)
            """
    }

    /// Whether committed events wait beyond the horizon, in the `events` table: whether the newest
    /// visible transaction id is at or past it. `max()` walks the index back from its end (past the
    /// entries of transactions still open) whatever the statistics say; `EXISTS (… WHERE
    /// transaction_id >= xmin)`, without statistics (a new log, one that just grew), was planned as a
    /// scan of the whole table: 15 ms a live read at 58k events, and growing with the log.
    static func heldBack(_ events: String, horizon: String) -> String {
        "coalesce((SELECT max(transaction_id) FROM \(events)) >= \(horizon), false)"
    }

    /// What goes before the events table and after a page's `LIMIT`: the packed page of ``EventPage``
    /// over the ordered rows, or the rows themselves.
    static func page(packed: Bool, heldBack: String? = nil) -> (head: String, tail: String) {
        packed
            ? ("SELECT count(*)::int4, string_agg(\(EventPage.frame), ''::bytea)\(heldBack.map { ", " + $0 } ?? "") FROM (SELECT * FROM", ") AS events")
            : ("SELECT \(eventColumns) FROM", "")
    }

    /// Events after `position` up to `target`, counting at most `limit`.
    func count(after position: LogPosition, through target: LogPosition?, limit: Int) -> PostgresQuery {
        let end = target ?? LogPosition(transactionID: UInt64(Int64.max), globalPosition: Int64.max)
        return """
            SELECT count(*) FROM (SELECT 1 FROM \(unescaped: events)
            WHERE (transaction_id, position) > (\(String(position.transactionID))::xid8, \(position.globalPosition))
              AND (transaction_id, position) <= (\(String(end.transactionID))::xid8, \(end.globalPosition))
            LIMIT \(limit)) AS e
            """
    }

    /// The last event readers can be handed now (below the transaction horizon).
    func head() -> PostgresQuery {
        """
        SELECT transaction_id::text::int8 AS transaction_number, position FROM \(unescaped: events)
        WHERE transaction_id < \(unescaped: horizon)
        ORDER BY transaction_id DESC, position DESC LIMIT 1
        """
    }

    /// How far a reader at `position` is behind: events after it, and the oldest one's age in seconds.
    func lag(after position: LogPosition) -> PostgresQuery {
        """
        SELECT count(*), coalesce(extract(epoch FROM now() - min(recorded_at)), 0)::float8 FROM \(unescaped: events)
        WHERE (transaction_id, position) > (\(String(position.transactionID))::xid8, \(position.globalPosition))
        """
    }

    /// What holds the horizon back: the open transactions that may append to this log, oldest first.
    func horizonHolders() -> PostgresQuery {
        "SELECT transaction_id::text::int8, pid, database::text, role::text, age_seconds, prepared_gid FROM \(unescaped: schemaName).log_horizon_holders()"
    }

    /// The server a session is on (database, address, port) and whether it can write: a standby, or a
    /// role or database set to `default_transaction_read_only`, cannot.
    func server() -> PostgresQuery {
        """
        SELECT current_database()::text, coalesce(host(inet_server_addr()), 'a local socket'), coalesce(inet_server_port(), 0),
               current_setting('transaction_read_only') = 'on', pg_is_in_recovery()
        """
    }

    /// Raises the log's order offset when a restore or failover left it behind (Migrations/log/0007).
    func repairOrder() -> PostgresQuery {
        "SELECT \(unescaped: schemaName).log_repair_order()"
    }

    func eventByID(_ id: UUID) -> PostgresQuery {
        "SELECT \(unescaped: Self.eventColumns) FROM \(unescaped: events) WHERE event_id = \(id)"
    }

    /// Decodes a row selected with ``eventColumns``.
    static func decodeEvent(_ row: PostgresRow) throws -> RecordedEvent {
        try EventCells.decode(row)
    }
}
