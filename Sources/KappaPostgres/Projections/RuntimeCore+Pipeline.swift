import PostgresNIO

extension RuntimeCore {
    /// Refuses a ``ProjectionRuntime/Configuration/pipelineConnectionString`` that reaches another
    /// database than the `readModels` client: batches sent there would find no lease to move (the
    /// fencing refuses them), and the runtime would retry them for ever. The database is named by
    /// its cluster's system identifier (a standby's is its primary's) and its name.
    /// Checked once per runtime: at ``ProjectionRuntime/run()``, or before the first pipelined batch
    /// of a runner the versions API runs.
    func checkPipelineTarget() async throws {
        guard let pipeline, !pipelineChecked.load(ordering: .relaxed) else { return }
        let sql = "SELECT system_identifier::text || '/' || current_database() FROM pg_control_system()"
        let expected = try await database.readModelRows(PostgresQuery(unsafeSQL: sql), resending: true) { try $0.decode(String.self) }.first
        let database = self.database
        let reached = try await pipeline.withConnection { connection in
            try await database.withWatchdog(abandon: { connection.abort() }) { try await connection.value(sql) }
        }
        guard reached == expected else {
            throw KappaPostgresError(
                .invalidConfiguration,
                message: "pipelineConnectionString reaches database \(reached ?? "?") (server system identifier / name),"
                    + " not the read-model client's \(expected ?? "?"): it must name the read-model database")
        }
        pipelineChecked.store(true, ordering: .relaxed)
    }
}
