import Kappa
import PostgresNIO

/// A projection whose every batch is one data-modifying statement — the common shape of a fold into
/// one multi-row upsert — so the runtime can apply a live batch in a single round trip.
///
/// A ``Projection``'s live batch is four statements, each a round trip: `BEGIN`, the handler's
/// writes, the fenced checkpoint move, `COMMIT`. For a projection that conforms to this protocol, the
/// runtime sends the batch's statement and the fenced checkpoint move as one statement (its own
/// implicit transaction): the writes are a `WITH` query beside the move, and when the move finds its
/// lease gone the statement fails, writes and all. Measured at 1,000 appends/s on the development
/// machine: see the live figures in Benchmarks/README.md.
///
/// The statement runs as a data-modifying `WITH` query, so it must be one `INSERT` (with or without
/// `ON CONFLICT`), `UPDATE` or `DELETE`, without a trailing `;` and without data-modifying `WITH`
/// queries of its own. Bind values with interpolation as usual:
///
/// ```swift
/// func statement(for events: [RecordedEvent], schema: String) throws -> PostgresQuery? {
///     let counts = Dictionary(events.map { ($0.eventType, 1) }, uniquingKeysWith: +)
///     guard !counts.isEmpty else { return nil }
///     return """
///         INSERT INTO \(unescaped: schema).counts AS c SELECT * FROM unnest(\(Array(counts.keys))::text[], \(Array(counts.values))::int8[])
///         ON CONFLICT (event_type) DO UPDATE SET n = c.n + excluded.n
///         """
/// }
/// ```
///
/// A bulk rebuild, and anything else that hands the projection a transaction, runs the same statement
/// through ``Projection/apply(_:in:)``, which this protocol implements.
public protocol SingleStatementProjection: Projection {
    /// The writes of a batch of events (in log order) as one data-modifying statement, or `nil`
    /// when the batch changes nothing. `schema` is this version's schema, quoted, ready to interpolate.
    /// Throwing rejects the batch, as throwing from ``Projection/apply(_:in:)`` does.
    func statement(for events: [RecordedEvent], schema: String) throws -> PostgresQuery?
}

extension SingleStatementProjection {
    /// Runs ``statement(for:schema:)`` in the runtime's transaction.
    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        if let statement = try statement(for: events, schema: context.schema) {
            try await context.execute(statement)
        }
    }
}
