import Kappa
import PostgresNIO

extension ProjectionRunner {
    /// A live batch of a ``SingleStatementProjection`` in one round trip: the projection's statement
    /// and the fenced checkpoint move as one statement, its own transaction (no `BEGIN`/`COMMIT`).
    /// A batch with nothing to write is the checkpoint move alone, also one statement.
    /// - Throws: ``LeaseLost`` when the lease changed hands (nothing is written); ``HandlerFailure``
    ///   when the projection rejects the batch or its statement fails; a transient fault as usual.
    func applyInOneStatement(
        _ projection: any SingleStatementProjection, _ relevant: [RecordedEvent], through last: LogPosition, lease: Lease, state: String
    ) async throws {
        let core = self.core, logger = self.logger
        let writes: PostgresQuery?
        do {
            writes = relevant.isEmpty ? nil : try projection.statement(for: relevant, schema: id.schema.quoted)
        } catch {
            throw HandlerFailure(event: relevant.count == 1 ? relevant[0] : nil, underlying: error)
        }
        guard let writes else {
            try await core.withReadModelConnection(transaction: false) { connection in
                try await lease.advance(to: last, applied: relevant.count, state: state, on: connection, core: core)
            }
            return
        }
        let batch = core.queries.singleStatementBatch(
            writes, lease.key, owner: lease.owner, token: lease.token, to: last, applied: relevant.count, state: state,
            milliseconds: core.configuration.leaseMilliseconds, asynchronousCommit: !core.configuration.synchronousReadModelCommits)
        do {
            try await core.withReadModelConnection(transaction: false) { connection in
                try await connection.run(batch, logger: logger)
            }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == leaseLostSQLState {
            throw LeaseLost()
        } catch let error as PSQLError {
            throw HandlerFailure(event: relevant.count == 1 ? relevant[0] : nil, underlying: error)
        }
    }
}
