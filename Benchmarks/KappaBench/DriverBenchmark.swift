import ArgumentParser
import Foundation
import KappaPostgres
import PostgresNIO

/// The spike that decides the hot paths' driver: the same single-row append and the same live batch
/// (`BEGIN`, an upsert of the cart, an upsert of its line, the cart's totals recomputed, the fenced
/// checkpoint, `COMMIT`) through postgres-nio as the framework uses it today, through postgres-nio on
/// a held connection with prepared statements, and through libpq, one statement at a time and as a
/// pipeline (one round trip for the whole transaction). One connection, operations one after the
/// other, so each figure is a latency; with the client's CPU per operation.
struct DriverBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "driver",
        abstract: "Append and live-batch latency and client CPU: postgres-nio pooled, postgres-nio prepared, libpq, libpq pipelined.")

    @Option(help: "Operations measured per figure (after as many again to warm up).")
    var operations = 3_000

    func run() async throws {
        try await BenchDatabase.withClient(connections: 2) { client in
            emit("driver: \(try await BenchDatabase.settings(client))")
            emit("driver: \(operations) operations each, one connection, one at a time")
            for statement in DriverWorkload.setUp { try await client.query(statement) }
            var results: [DriverResult] = []
            results.append(try await measureNIO("append", "postgres-nio, pooled query", DriverWorkload.appendNIO(client)))
            results.append(try await measureNIO("batch", "postgres-nio, pooled query", DriverWorkload.batchNIO(client)))
            results.append(
                try await measureNIO("append", "postgres-nio, pooled, prepared", DriverWorkload.appendPooledPrepared(client, guarded: false, tag: "pooled")))
            results.append(
                try await measureNIO("append", "pooled, prepared, guarded", DriverWorkload.appendPooledPrepared(client, guarded: true, tag: "guarded")))
            // The pool schedules a keep-alive timer (a task) each time a connection comes back idle.
            results += try await BenchDatabase.withClient(connections: 2, keepAlive: false) { quiet in
                let store = try await BenchLog.fresh(quiet, schema: "kappa_driver_quiet")
                return [
                    try await measureNIO("append", "pooled, prepared, no keep-alive", DriverWorkload.appendPooledPrepared(quiet, guarded: false, tag: "quiet")),
                    try await measureNIO("append", "store.append, no keep-alive", DriverWorkload.appendStore(store, tag: "quiet-store")),
                ]
            }
            let store = try await BenchLog.fresh(client, schema: "kappa_driver")
            results.append(try await measureNIO("append", "PostgresEventStore.append", DriverWorkload.appendStore(store, tag: "store")))
            // Running as a service, with one of the pool's two connections held for its appends;
            // then with a libpq connection held as well, through which its appends go.
            var heldConfiguration = PostgresEventStore.Configuration(schema: "kappa_driver")
            heldConfiguration.heldAppendConnections = 1
            results.append(try await measureRunning(client, heldConfiguration, "store.append, held connection", tag: "held-store"))
            heldConfiguration.appendConnectionString = BenchDatabase.connectionString
            results.append(try await measureRunning(client, heldConfiguration, "store.append, libpq held", tag: "libpq-store"))
            try await client.withConnection { connection in
                results.append(try await measureNIO("append", "postgres-nio, held, prepared", DriverWorkload.appendPrepared(connection)))
                results.append(try await measureNIO("batch", "postgres-nio, held, prepared", DriverWorkload.batchPrepared(connection)))
            }
            let reactor = try await ReactorConnection.connect(
                BenchDatabase.connectionString, applicationName: "kappa-bench",
                preparing: [.init(name: "append", sql: DriverWorkload.append, types: [])])
            results.append(try await measureNIO("append", "libpq, prepared, reactor", DriverWorkload.appendReactor(reactor)))
            results += try await measureLibPQ()
            emit("")
            emit("operation  client                          p50 µs   p99 µs    ops/s   client CPU µs/op")
            for result in results { emit(result.line) }
        }
    }

    private func measureNIO(_ operation: String, _ client: String, _ step: @Sendable (Int) async throws -> Void) async throws -> DriverResult {
        for index in 0..<operations { try await step(-1 - index) }
        var recording = LatencyRecording(capacity: operations)
        for index in 0..<operations { try await recording.time { try await step(index) } }
        return recording.result(operation, client)
    }

    /// The store's append, the store running (its connections held) while it is measured.
    private func measureRunning(
        _ client: PostgresClient, _ configuration: PostgresEventStore.Configuration, _ name: String, tag: String
    ) async throws -> DriverResult {
        let store = try PostgresEventStore(client: client, configuration: configuration, logger: quietLogger)
        let libpq = configuration.appendConnectionString == nil ? 0 : configuration.heldAppendConnections
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            while store.heldConnections.count < configuration.heldAppendConnections || store.libpqConnections.idleCount < libpq {
                try await Task.sleep(for: .milliseconds(1))
            }
            return try await measureNIO("append", name, DriverWorkload.appendStore(store, tag: tag))
        }
    }

    /// libpq blocks its thread, so it runs on one of its own.
    private func measureLibPQ() async throws -> [DriverResult] {
        let operations = self.operations
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try DriverWorkload.libpq(operations: operations) })
            }
        }
    }
}

/// One figure: its latencies, the time the whole run took and the process's CPU over it.
struct DriverResult: Sendable {
    var operation: String
    var client: String
    var latencies: [Duration]
    var elapsed: Duration
    var cpuSeconds: Double

    var line: String {
        let micros = latencies.map { Double($0.components.attoseconds) / 1e12 + Double($0.components.seconds) * 1e6 }.sorted()
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let p50 = micros[micros.count / 2], p99 = micros[min(micros.count - 1, micros.count * 99 / 100)]
        return String(
            format: "%@  %@ %8.0f %8.0f %8.0f   %8.1f", operation.padding(toLength: 9, withPad: " ", startingAt: 0),
            client.padding(toLength: 30, withPad: " ", startingAt: 0), p50, p99, Double(micros.count) / seconds, cpuSeconds * 1e6 / Double(micros.count))
    }
}

/// The latencies of operations timed one after another, the time the whole run took and the
/// process's CPU over it.
struct LatencyRecording {
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    private let cpu = ProcessCPU.now()
    private var latencies: [Duration] = []

    init(capacity: Int) {
        started = clock.now
        latencies.reserveCapacity(capacity)
    }

    mutating func time(_ operation: () throws -> Void) rethrows {
        let start = clock.now
        try operation()
        latencies.append(clock.now - start)
    }

    mutating func time(_ operation: () async throws -> Void) async rethrows {
        let start = clock.now
        try await operation()
        latencies.append(clock.now - start)
    }

    func result(_ operation: String, _ client: String) -> DriverResult {
        DriverResult(operation: operation, client: client, latencies: latencies, elapsed: clock.now - started, cpuSeconds: ProcessCPU.now() - cpu)
    }
}

/// This process's CPU seconds (user and system, every thread) from getrusage.
enum ProcessCPU {
    static func now() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
