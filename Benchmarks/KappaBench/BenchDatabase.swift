import Foundation
import Logging
import PostgresNIO

/// The benchmark's connection: the standard PG* variables, and a pool large enough for every writer.
enum BenchDatabase {
    static func withClient<R: Sendable>(connections: Int, _ body: @Sendable (PostgresClient) async throws -> R) async throws -> R {
        let env = ProcessInfo.processInfo.environment
        var configuration = PostgresClient.Configuration(
            host: env["PGHOST"].flatMap { $0.hasPrefix("/") ? nil : $0 } ?? "localhost",
            port: env["PGPORT"].flatMap(Int.init) ?? 5432,
            username: env["PGUSER"] ?? "postgres", password: env["PGPASSWORD"],
            database: env["PGDATABASE"] ?? "postgres", tls: .disable)
        configuration.options.maximumConnections = connections
        configuration.options.minimumConnections = connections
        let client = PostgresClient(configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// The server settings that decide what the figures mean.
    static func settings(_ client: PostgresClient) async throws -> String {
        var parts: [String] = []
        for name in ["server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers"] {
            for try await value in try await client.query("SELECT current_setting(\(name))").decode(String.self) {
                parts.append("\(name)=\(value)")
            }
        }
        return parts.joined(separator: " ")
    }
}

/// Runs `writers` tasks that each do `perWriter` operations, and returns operations per second.
func measure(writers: Int, perWriter: Int, _ operation: @escaping @Sendable (_ writer: Int, _ index: Int) async throws -> Void) async throws -> Double {
    let clock = ContinuousClock()
    let elapsed = try await clock.measure {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask { for index in 0..<perWriter { try await operation(writer, index) } }
            }
            try await group.waitForAll()
        }
    }
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(writers * perWriter) / seconds
}

func formatRate(_ rate: Double) -> String {
    String(format: "%9.0f", rate)
}

/// The benchmarks log warnings only, so their figures stay readable.
let quietLogger: Logger = {
    var logger = Logger(label: "kappa.bench")
    logger.logLevel = .warning
    return logger
}()
