import Kappa
import PostgresNIO

/// A page of the log after a position, packed (see ``EventPage``), as a prepared statement: what a
/// live follower sends several hundred times a second. Unprepared, the server planned it every time,
/// about 0.2 ms, more than it took to run.
///
/// Its parameters are read in sub-selects (`(SELECT $1)`), which the planner cannot look into, so
/// that the plan it makes without their values costs the same as one made with them: PostgreSQL
/// then keeps the generic plan after five executions and plans no more. That plan walks the
/// `(transaction_id, position)` index like the unprepared read (``QueryPlanTests`` pins both).
///
/// Its SQL names the log's schema, so its text is bound per call (``SchemaBoundStatement``).
struct ReadPageStatement: SchemaBoundStatement {
    static let text = TaskLocal<StatementText?>(wrappedValue: nil)

    typealias Row = PostgresRow

    let after: LogPosition
    let limit: Int32

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(String(after.transactionID))
        bindings.append(after.globalPosition)
        bindings.append(limit)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }

    /// The statement for the log in `events` (a quoted, qualified table name) of `schema`.
    static func text(events: String, horizon: String, schema: String, refined: Bool = false) -> StatementText {
        let (head, tail) = EventLogQueries.page(packed: true, heldBack: EventLogQueries.heldBack(events, horizon: horizon))
        let sql = """
            \(head) \(events)
            WHERE (transaction_id, position) > ((SELECT $1::xid8), (SELECT $2::int8))
              AND transaction_id < \(horizon)
            ORDER BY transaction_id, position LIMIT (SELECT $3::int4)\(tail)
            """
        return StatementText(name: "kappa_read_page_\(refined ? "r_" : "")\(StatementText.suffix(for: schema))", sql: sql, types: [.text, .int8, .int4])
    }
}
