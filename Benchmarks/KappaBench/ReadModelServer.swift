import ArgumentParser
import KappaTesting
import PostgresNIO

/// Where a benchmark's read models (and the runtime's tables) live.
enum ReadModelPlacement: String, ExpressibleByArgument, CaseIterable {
    /// On the log's server, through the benchmark's own pool.
    case local
    /// On a second cluster of this machine's PostgreSQL (a new data directory, its own port, fsync on):
    /// a separate read-model server, reached over loopback as another machine would be over the network.
    case remote
}

enum ReadModelServer {
    /// Runs `body` with the client and the libpq connection string (for `pipelineConnectionString`)
    /// of the read models' server: `local` itself, or a second cluster started for the run.
    static func with<R: Sendable>(
        _ placement: ReadModelPlacement, local: PostgresClient, connections: Int,
        _ body: @escaping @Sendable (PostgresClient, String) async throws -> R
    ) async throws -> R {
        guard placement == .remote else { return try await body(local, BenchDatabase.connectionString) }
        let settings = ["fsync=on", "synchronous_commit=on", "shared_buffers=512MB", "max_connections=100"]
        return try await ThrowAwayCluster.with(settings: settings) { cluster in
            var configuration = cluster.configuration()
            configuration.options.maximumConnections = connections
            configuration.options.minimumConnections = connections
            configuration.options.additionalStartupParameters = [("application_name", "kappa-bench runtime")]
            let remote = PostgresClient(configuration: configuration)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await remote.run() }
                defer { group.cancelAll() }
                emit("read models: a second cluster, 127.0.0.1:\(cluster.port): \(try await BenchDatabase.settings(remote))")
                return try await body(
                    remote, "host=127.0.0.1 port=\(cluster.port) user=postgres dbname=postgres sslmode=disable application_name='kappa-bench runtime'")
            }
        }
    }
}
