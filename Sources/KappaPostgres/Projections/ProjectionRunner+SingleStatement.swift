import Kappa
import PostgresNIO

extension ProjectionRunner {
    /// A live batch of a ``SingleStatementProjection`` in one round trip: the projection's statement
    /// and the fenced checkpoint move as one statement, its own transaction (no `BEGIN`/`COMMIT`).
    /// A batch with nothing to write is the checkpoint move alone, also one statement. A statement
    /// that is not an `INSERT`, `UPDATE`, `DELETE` or `WITH` query (a `SELECT` of a function, say,
    /// which PostgreSQL would skip as an unused `WITH` query) runs in a transaction as usual.
    /// - Returns: `false` when the statement cannot be sent this way (nothing was sent).
    /// - Throws: ``LeaseLost`` when the lease changed hands or the checkpoint moved (nothing is written); ``HandlerFailure``
    ///   when the projection rejects the batch or its statement fails; a transient fault as usual.
    func applyInOneStatement(
        _ projection: any SingleStatementProjection, _ relevant: [RecordedEvent], through last: LogPosition, lease: Lease, state: ProjectionStatus.State
    ) async throws -> Bool {
        let core = self.core, logger = self.logger
        var writes: PostgresQuery?
        do {
            writes = relevant.isEmpty ? nil : try projection.statement(for: relevant, schema: id.schema.quoted)
        } catch {
            throw HandlerFailure(relevant, underlying: error)
        }
        guard var statement = writes else {
            try await core.database.withReadModelConnection(transaction: false) { connection in
                try await lease.advance(to: last, applied: relevant.count, state: state, on: connection, core: core)
            }
            return true
        }
        guard let embeddable = Self.embeddable(statement.sql) else { return false }
        statement.sql = embeddable
        let batch = core.queries.singleStatementBatch(
            statement, lease.move(to: last, applied: relevant.count, state: state, core: core),
            asynchronousCommit: !core.configuration.synchronousReadModelCommits)
        do {
            try await core.database.withReadModelConnection(transaction: false) { connection in
                try await connection.run(batch, logger: logger)
            }
        } catch let error as PSQLError where error.sqlState == .kappaLeaseLost {
            throw LeaseLost()
        } catch let error as PSQLError {
            throw HandlerFailure(relevant, underlying: error)
        }
        core.singleStatementBatches.add(1, ordering: .relaxed)
        return true
    }

    /// `sql` without trailing blanks and `;`, if it begins with a keyword that can stand as a
    /// data-modifying `WITH` query (after blanks and `--` comments); else `nil`.
    static func embeddable(_ sql: String) -> String? {
        var text = Substring(sql)
        while true {
            text = text.drop(while: { $0.isWhitespace })
            guard text.hasPrefix("--") else { break }
            text = text.drop(while: { $0 != "\n" })
        }
        let keyword = text.prefix(while: { $0.isLetter }).uppercased()
        guard ["INSERT", "UPDATE", "DELETE", "WITH"].contains(keyword) else { return nil }
        var trimmed = Substring(sql)
        while let last = trimmed.last, last.isWhitespace || last == ";" { trimmed = trimmed.dropLast() }
        return String(trimmed)
    }
}
