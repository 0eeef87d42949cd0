import Foundation
import Logging
import PostgresNIO

/// The benchmark's connection: the standard PG* variables, and a pool large enough for every writer.
enum BenchDatabase {
    /// - Parameter name: The connections' `application_name`, by which ``BackendCPU`` tells pools apart.
    static func withClient<R: Sendable>(
        connections: Int, name: String = "kappa-bench", keepAlive: Bool = true,
        _ body: @Sendable (PostgresClient) async throws -> R
    ) async throws -> R {
        let env = ProcessInfo.processInfo.environment
        var configuration = PostgresClient.Configuration(
            host: env["PGHOST"].flatMap { $0.hasPrefix("/") ? nil : $0 } ?? "localhost",
            port: env["PGPORT"].flatMap(Int.init) ?? 5432,
            username: env["PGUSER"] ?? "postgres", password: env["PGPASSWORD"],
            database: env["PGDATABASE"] ?? "postgres", tls: .disable)
        configuration.options.maximumConnections = connections
        configuration.options.minimumConnections = connections
        if !keepAlive { configuration.options.keepAliveBehavior = nil }
        configuration.options.additionalStartupParameters = [("application_name", name)]
        let client = PostgresClient(configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// The same server for libpq (a runtime's `pipelineConnectionString`), over TCP as the clients
    /// above, and named as the runtime's pool, so that ``BackendCPU`` counts its connections there.
    static var connectionString: String {
        let env = ProcessInfo.processInfo.environment
        let host = env["PGHOST"].flatMap { $0.hasPrefix("/") ? nil : $0 } ?? "localhost"
        return "host='\(host)' port=\(env["PGPORT"] ?? "5432") sslmode=disable application_name='kappa-bench runtime'"
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

/// The middle value (the upper one of an even count).
func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func formatRate(_ rate: Double) -> String {
    String(format: "%9.0f", rate)
}

/// The benchmarks log warnings only, so their figures stay readable.
let quietLogger: Logger = {
    var logger = Logger(label: "kappa.bench")
    logger.logLevel = .warning
    return logger
}()

/// CPU time used on this machine (every process: the benchmark and the server), from `/proc/stat`:
/// a steadier measure than elapsed time on a shared 2-core machine. `nil` where there is no `/proc/stat`.
struct MachineCPU {
    let busy: Double, steal: Double

    static func now() -> MachineCPU? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        // user nice system idle iowait irq softirq steal …, in 1/100 s.
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 8 else { return nil }
        let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
        return MachineCPU(busy: busy / 100, steal: fields[7] / 100)
    }

    /// Busy seconds of the machine's CPUs since `start` (0 without `/proc/stat`).
    static func since(_ start: MachineCPU?) -> Double {
        guard let start, let end = now() else { return 0 }
        return end.busy - start.busy
    }

    /// "x.x µs CPU/event" for `events` between `start` and now.
    static func perEvent(since start: MachineCPU?, events: Int) -> String {
        guard let start, let end = now() else { return "" }
        return String(format: "%.1f µs CPU/event", (end.busy - start.busy) / Double(events) * 1e6)
            + ((end.steal - start.steal) > 0.05 ? String(format: " (%.1f s stolen)", end.steal - start.steal) : "")
    }
}
