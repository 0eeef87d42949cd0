import Kappa
import PostgresNIO

extension ProjectionRunner {
    /// A live batch in one round trip (``ProjectionRuntime/Configuration/pipelineConnectionString``):
    /// the handler runs first, its statements queued by ``ProjectionContext/execute(_:)``; then they,
    /// the fenced checkpoint move (failing through `lease_lost()` when the lease is gone), between
    /// `BEGIN` and `COMMIT`, go to the server at once: one transaction, one round trip.
    /// - Returns: `false` when the batch must run statement by statement (nothing of it was
    ///   committed): the handler asked for the connection, its statements could not be read for
    ///   libpq, or one of them failed.
    /// - Throws: ``LeaseLost`` when the lease changed hands or the checkpoint moved (nothing is
    ///   written); ``HandlerFailure`` when the handler throws; a transient fault (the connection
    ///   lost, the watchdog) as usual.
    func applyPipelined(
        _ relevant: [RecordedEvent], through last: LogPosition, lease: Lease, state: ProjectionStatus.State, on pipeline: PipelineConnections
    ) async throws -> Bool {
        let queued = QueuedStatements()
        if !relevant.isEmpty {
            let context = ProjectionContext(
                .pipeline(queued), schema: id.schema.quoted, projection: id.name, version: id.version, isRebuilding: false, logger: logger)
            var failure: (any Error)?
            do { try await projection.apply(relevant, in: context) } catch { failure = error }
            // Asked for, whatever the handler did with the error (rethrown, wrapped, or `try?`).
            if queued.wasConnectionAsked {
                core.runStatementByStatement(key)
                logger.info("the handler reads through the connection: its batches run statement by statement")
                return false
            }
            if let failure { throw HandlerFailure(relevant, underlying: failure) }
        }
        let writes = queued.all
        let move = core.queries.failingAdvance(
            lease.move(to: last, applied: relevant.count, state: state, core: core),
            asynchronousCommit: !core.configuration.synchronousReadModelCommits)
        let statements: [LibPQStatement]
        do {
            statements = try (writes + [move]).map(LibPQStatement.init)
        } catch {
            core.runStatementByStatement(key)
            logger.warning("a statement could not be sent through libpq; batches run statement by statement", metadata: ["error": "\(error)"])
            return false
        }
        let core = self.core
        do {
            try await lease.whileRenewing(state: state, core: core) {
                try await pipeline.withConnection { connection in
                    try await core.database.withWatchdog(abandon: { connection.abort() }) {
                        try await connection.pipeline(statements)
                    }
                }
            }
        } catch let failure as PipelineFailure {
            // A statement of the handler's failed: the batch is applied again statement by statement,
            // where its errors reach the handler at the statement, as it expects them (it may catch
            // one), and a failure there is judged as usual. The checkpoint, BEGIN and COMMIT are the runtime's.
            if writes.indices.contains(failure.index) {
                logger.debug("a pipelined batch failed; applying it statement by statement", metadata: ["error": "\(failure)"])
                return false
            }
            if failure.error.sqlState == PostgresError.Code.kappaLeaseLost.raw { throw LeaseLost() }
            throw failure.error
        }
        core.pipelinedBatches.add(1, ordering: .relaxed)
        return true
    }
}
