import PostgresNIO
import Synchronization

extension RuntimeCore {
    /// Opens (or reuses) a pipeline connection at start, so that a
    /// ``ProjectionRuntime/Configuration/pipelineConnectionString`` that reaches another database,
    /// or none, is refused before anything runs: ``PipelineTarget`` checks every new connection.
    /// A connection that keeps failing for 15 s is taken for a wrong connection string (a password,
    /// a host, a database name), not for a server on its way back.
    func checkPipelineTarget() async throws {
        guard let pipeline else { return }
        let started = ContinuousClock.now
        while true {
            do {
                try await pipeline.withConnection { _ in }
                return
            } catch let error as LibPQError where error.connectionLost && ContinuousClock.now - started < .seconds(15) {
                logger.warning("could not open a pipeline connection yet", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .milliseconds(500))
            } catch let error as LibPQError where error.connectionLost {
                throw KappaPostgresError(.invalidConfiguration, message: "pipelineConnectionString: no connection in 15 s: \(error)")
            }
        }
    }
}

/// Checks each new pipeline connection before its first batch: it must reach the read-model client's
/// database (named by its cluster's system identifier and its name; a standby's identifier is its
/// primary's) in a session that can write. Batches sent elsewhere would find no lease to move, and a
/// standby's sessions cannot write: either would be retried for ever.
final class PipelineTarget: Sendable {
    private let database: RuntimeDatabase
    /// The read-model client's database, looked up once.
    private let expected = Mutex<String?>(nil)
    private static let identity = "SELECT system_identifier::text || '/' || current_database() FROM pg_control_system()"
    /// The same through a pipeline connection, in the same round trip `standby` for a standby's session.
    private static let reachedIdentity =
        "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE system_identifier::text || '/' || current_database() END FROM pg_control_system()"
    private static let standby = "standby"

    init(database: RuntimeDatabase) {
        self.database = database
    }

    @Sendable func check(_ connection: LibPQConnection) async throws {
        let expected: String
        if let known = self.expected.withLock({ $0 }) {
            expected = known
        } else {
            let rows = try await database.readModelRows(PostgresQuery(unsafeSQL: Self.identity), resending: true) { try $0.decode(String.self) }
            expected = rows.first ?? "?"
            self.expected.withLock { $0 = expected }
        }
        let reached = try await database.withWatchdog(abandon: { connection.abort() }) { try await connection.value(Self.reachedIdentity) }
        guard reached != Self.standby else {
            throw KappaPostgresError(
                .invalidConfiguration,
                message: "pipelineConnectionString reaches a standby of the read-model database, whose sessions cannot write:"
                    + " leave target_session_attrs to the runtime (read-write) or name the primary")
        }
        guard reached == expected else {
            throw KappaPostgresError(
                .invalidConfiguration,
                message: "pipelineConnectionString reaches database \(reached ?? "?") (server system identifier / name),"
                    + " not the read-model client's \(expected): it must name the read-model database")
        }
    }
}
