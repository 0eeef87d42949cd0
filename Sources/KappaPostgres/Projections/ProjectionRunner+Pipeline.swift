import Kappa
import PostgresNIO

/// A batch ready to be sent in one round trip: the handler's statements, then the fenced
/// checkpoint move.
struct PipelinedBatch: Sendable {
    let statements: [LibPQStatement]
    /// How many of ``statements`` are the handler's (the rest: the checkpoint move).
    let writes: Int
}

extension ProjectionRunner {
    /// A live batch in one round trip (``ProjectionRuntime/Configuration/pipelineConnectionString``):
    /// the handler's statements, queued by ``ProjectionContext/execute(_:)``, and the fenced
    /// checkpoint move (failing through `lease_lost()` when the lease is gone), between `BEGIN` and
    /// `COMMIT`, sent at once: one transaction, one round trip.
    /// - Returns: `false` when the batch must run statement by statement (nothing of it was
    ///   committed): see ``prepareBatch(_:isRebuilding:fence:)`` and ``send(_:on:)``.
    /// - Throws: ``LeaseLost`` when the lease changed hands or the checkpoint moved (nothing is
    ///   written); ``HandlerFailure`` when the handler throws; a transient fault (the connection
    ///   lost, the watchdog) as usual.
    func applyPipelined(
        _ relevant: [RecordedEvent], through last: LogPosition, lease: Lease, state: ProjectionStatus.State, on pipeline: PipelineConnections
    ) async throws -> Bool {
        let move = core.queries.failingAdvance(
            lease.move(to: last, applied: relevant.count, state: state, core: core),
            asynchronousCommit: !core.configuration.synchronousReadModelCommits)
        guard let batch = try await prepareBatch(relevant, isRebuilding: false, fence: move) else { return false }
        let runner = self
        guard try await lease.whileRenewing(state: state, core: core, { try await runner.send(batch, on: pipeline) }) else { return false }
        core.pipelinedBatches.add(1, ordering: .relaxed)
        return true
    }

    /// Runs the handler with its statements queued, then readies them with `fence` (a statement that
    /// fails when the batch's lease or checkpoint is not where the batch began) last.
    /// - Returns: `nil` when the batch must run statement by statement (nothing was sent): the
    ///   handler asked for the connection (from now on, for this version), or its statements could
    ///   not be read for libpq.
    /// - Throws: ``HandlerFailure`` when the handler throws.
    func prepareBatch(_ relevant: [RecordedEvent], isRebuilding: Bool, fence: PostgresQuery) async throws -> PipelinedBatch? {
        let queued = QueuedStatements()
        if !relevant.isEmpty {
            let context = ProjectionContext(
                .pipeline(queued), schema: id.schema.quoted, projection: id.name, version: id.version, isRebuilding: isRebuilding,
                logger: logger)
            var failure: (any Error)?
            do { try await projection.apply(relevant, in: context) } catch { failure = error }
            // Asked for, whatever the handler did with the error (rethrown, wrapped, or `try?`).
            if queued.wasConnectionAsked {
                core.runStatementByStatement(key)
                logger.info("the handler reads through the connection: its batches run statement by statement")
                return nil
            }
            if let failure { throw HandlerFailure(relevant, underlying: failure) }
        }
        let writes = queued.all
        do {
            return PipelinedBatch(statements: try (writes + [fence]).map(LibPQStatement.init), writes: writes.count)
        } catch {
            core.runStatementByStatement(key)
            logger.warning("a statement could not be sent through libpq; batches run statement by statement", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Sends `batch` in one round trip, under the watchdog.
    /// - Returns: `false` when a statement of the handler's failed (the batch rolled back): it is to
    ///   be applied again statement by statement, where its errors reach the handler at the statement,
    ///   as it expects them (it may catch one), and a failure there is judged as usual.
    /// - Throws: ``LeaseLost`` when the fence failed; a transient fault as usual.
    func send(_ batch: PipelinedBatch, on pipeline: PipelineConnections) async throws -> Bool {
        let core = self.core
        do {
            try await pipeline.withConnection { connection in
                try await core.database.withWatchdog(abandon: { connection.abort() }) {
                    try await connection.pipeline(batch.statements)
                }
            }
            return true
        } catch let failure as PipelineFailure {
            // The handler's statements are its own; the fence, BEGIN and COMMIT are the runtime's.
            if failure.index >= 0 && failure.index < batch.writes {
                logger.debug("a pipelined batch failed; applying it statement by statement", metadata: ["error": "\(failure)"])
                return false
            }
            if failure.error.sqlState == PostgresError.Code.kappaLeaseLost.raw { throw LeaseLost() }
            throw failure.error
        }
    }
}
