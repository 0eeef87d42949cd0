import Kappa
import PostgresNIO

/// The fenced move of a checkpoint, in every batch's transaction, as a prepared statement: parsed
/// and planned once per connection (planning it took the server ~0.1 ms a batch). It matches only
/// while the lease's owner and token are still the holder's and the checkpoint is where the batch
/// began; no row back means the lease is lost (or a batch the runtime gave up on committed after all).
///
/// Its SQL names the runtime's schema, so its text is bound per call (``SchemaBoundStatement``).
struct AdvanceStatement: SchemaBoundStatement {
    static let text = TaskLocal<StatementText?>(wrappedValue: nil)

    typealias Row = Void

    let key: LeaseKey
    let owner: String
    let token: Int64
    /// Where the checkpoint must still be: where the batch began.
    let start: LogPosition
    let position: LogPosition
    let applied: Int
    let state: ProjectionStatus.State
    let milliseconds: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 11)
        append(to: &bindings)
        return bindings
    }

    /// Appends the statement's 11 parameters, in the order ``update(table:asynchronousCommit:first:)`` numbers them.
    func append(to bindings: inout PostgresBindings) {
        bindings.append(String(position.transactionID))
        bindings.append(position.globalPosition)
        bindings.append(Int64(applied))
        bindings.append(state.rawValue)
        bindings.append(milliseconds)
        bindings.append(key.name)
        bindings.append(Int32(key.version))
        bindings.append(owner)
        bindings.append(token)
        bindings.append(String(start.transactionID))
        bindings.append(start.globalPosition)
    }

    func decodeRow(_ row: PostgresRow) throws {}

    /// The `UPDATE` of `table` (a quoted, qualified name), its parameters numbered from `$first`;
    /// with `asynchronousCommit`, it also makes its transaction commit without waiting for the disk.
    /// It also bounds, server-side, how long its transaction may then sit idle before its `COMMIT`:
    /// the moved row stays locked until the commit, and a holder paused just then (GC, SIGSTOP) would
    /// otherwise keep every other runner from taking the lease for as long as it is paused; past the
    /// lease's duration the server ends its session instead (a local setting, no round trip).
    /// The lease runs from the move itself (`clock_timestamp()`), not from the transaction's start
    /// (`now()`): after a batch longer than the lease, that would leave it expired at the commit.
    /// The prepared statement, the plain one and a single-statement batch's checkpoint all use it.
    static func update(table: String, asynchronousCommit: Bool, first: Int = 1) -> String {
        func p(_ n: Int) -> String { "$\(first + n - 1)" }
        return """
            UPDATE \(table) SET
                checkpoint_xid = \(p(1))::xid8,
                checkpoint_position = \(p(2)),
                events_applied = events_applied + \(p(3)),
                state = \(p(4)),
                lease_expires_at = clock_timestamp() + \(p(5)) * interval '1 millisecond',
                updated_at = now()
            WHERE name = \(p(6)) AND version = \(p(7)) AND lease_owner = \(p(8)) AND lease_token = \(p(9))
              AND checkpoint_xid = \(p(10))::xid8 AND checkpoint_position = \(p(11))
            RETURNING \(ProjectionQueries.commitMode(asynchronous: asynchronousCommit)),
                set_config('idle_in_transaction_session_timeout', \(p(5))::text, true)
            """
    }

    /// The prepared statement for `table` of the runtime schema `schema`.
    static func text(table: String, kind: String, schema: String, asynchronousCommit: Bool) -> StatementText {
        let mode = asynchronousCommit ? "a" : "s"
        return StatementText(
            name: "kappa_advance_\(kind)_\(mode)_\(StatementText.suffix(for: schema))",
            sql: update(table: table, asynchronousCommit: asynchronousCommit),
            types: [.text, .int8, .int8, .text, .int8, .text, .int4, .text, .int8, .text, .int8])
    }
}
