import ArgumentParser
import Foundation
import KappaFixtures
import KappaPostgres
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#endif

struct FleetBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Events/s a fleet of 1, 2, 3… projector processes applies to M projection versions, with the machine's CPU per event.",
        discussion: """
            For each process count N (--processes): starts N worker processes (this \
            program's fleet-worker), each running the same M versions (--versions) of \
            CartLinesProjection, pipelined, with lease balancing on; waits until every \
            version is leased and the leases are spread (at most ⌈M/N⌉ a process); stops \
            the workers (SIGSTOP), writes --events cart events with COPY, resumes them \
            (SIGCONT) and measures until every version has passed the last event. \
            Prints events applied per second over all versions (events × M / seconds), \
            the machine's CPU per applied event (both cores, every process) and the \
            projector processes' part of it, and the versions each process held. Each \
            count starts from a fresh log and fresh read models.
            """
    )

    @Option(help: "Process counts to measure, comma-separated.") var processes = "1,2,3"
    @Option(help: "Projection versions the fleet runs (each a CartLinesProjection of its own).") var versions = 6
    @Option(help: "Cart events written for each measurement.") var events = 50_000
    @Option(help: "Carts the events are spread over.") var carts = 5_000
    @Option(help: "Each process's pool of read-model connections.") var connections = 8

    func run() async throws {
        let counts = processes.split(separator: ",").compactMap { Int($0) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 > 0 }) else { throw ValidationError("--processes takes positive counts, comma-separated") }
        try await BenchDatabase.withClient(connections: 2) { client in
            emit("server: \(try await BenchDatabase.settings(client))")
            emit("processes   events/s (all versions)   seconds   machine CPU/event (the projector processes')   versions per process")
            for count in counts {
                let store = try await BenchLog.fresh(client, schema: FleetWorker.log)
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(FleetWorker.runtime) CASCADE"))
                for version in 0..<versions {
                    // The version's tables and its stable names (views).
                    for schema in ["\(FleetWorker.projection(version))_v1", FleetWorker.projection(version)] {
                        try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE"))
                    }
                }
                let workers = try (0..<count).map { _ in try FleetWorker.spawn(versions: versions, connections: connections) }
                defer { for worker in workers where worker.isRunning { worker.terminate() } }
                try await waitUntilSpread(client, processes: count)
                for worker in workers { kill(worker.processIdentifier, SIGSTOP) }
                let written = try await BenchLog.seedCarts(client, store: store, events: events, carts: carts)
                let last = try await Self.single(client, "SELECT max(position) FROM \(FleetWorker.log).events")
                let cpu = MachineCPU.now()
                let workersCPU = { workers.compactMap { processCPUSeconds($0.processIdentifier) }.reduce(0, +) }
                let workersBefore = workersCPU()
                let clock = ContinuousClock()
                let start = clock.now
                for worker in workers { kill(worker.processIdentifier, SIGCONT) }
                while try await Self.single(
                    client, "SELECT count(*) FROM \(FleetWorker.runtime).projections WHERE checkpoint_position >= \(last)") < Int64(versions)
                {
                    try await Task.sleep(for: .milliseconds(10))
                }
                let seconds = (clock.now - start).seconds
                let applied = written * versions
                let held = try await holdings(client)
                let workersUsed = workersCPU() - workersBefore
                for worker in workers { worker.terminate() }
                for worker in workers { worker.waitUntilExit() }
                emit(
                    "  \(count)          \(formatRate(Double(applied) / seconds))              \(String(format: "%7.2f", seconds))   \(MachineCPU.perEvent(since: cpu, events: applied))"
                        + String(format: " (the processes' %.1f µs)", workersUsed / Double(applied) * 1e6) + "   \(held)")
            }
        }
    }

    /// Until the M versions are each held, by `processes` owners at most ⌈M/N⌉ each.
    private func waitUntilSpread(_ client: PostgresClient, processes: Int) async throws {
        let share = (versions + processes - 1) / processes
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            let ready = try? await Self.single(
                client,
                """
                SELECT CASE WHEN count(*) = \(versions) AND bool_and(lease_expires_at > now())
                                 AND count(DISTINCT lease_owner) = \(min(processes, versions))
                                 AND (SELECT max(n) FROM (SELECT count(*) AS n FROM \(FleetWorker.runtime).projections GROUP BY lease_owner) o) <= \(share)
                            THEN 1 ELSE 0 END
                FROM \(FleetWorker.runtime).projections
                """)
            if ready == 1 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("the fleet of \(processes) did not spread \(versions) live versions within 120 s")
    }

    /// The versions each owner holds, as "3+3".
    private func holdings(_ client: PostgresClient) async throws -> String {
        var counts: [Int64] = []
        for try await n in try await client.query(
            PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(FleetWorker.runtime).projections GROUP BY lease_owner ORDER BY 1 DESC")
        ).decode(Int64.self) { counts.append(n) }
        return counts.map(String.init).joined(separator: "+")
    }

    static func single(_ client: PostgresClient, _ sql: String) async throws -> Int64 {
        for try await value in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(Int64?.self) { return value ?? 0 }
        return 0
    }
}
