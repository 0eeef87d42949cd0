import ArgumentParser
import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import Logging
import PostgresNIO

struct RebuildBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Events/s of a bulk rebuild (migration by replay), 1 worker and parallel, beside the pure-SQL equivalent.",
        discussion: """
            Writes a log of cart events with COPY, then rebuilds the cart read model \
            (one row per cart, the sample app's shape, per-stream order) from the first \
            event with ProjectionVersions.rebuild:
              kappa 1 worker    one ordered worker
              kappa N workers   N workers, each on a partition of the streams, fed
                                from one read of the log
              sql               the equivalent single INSERT … SELECT … GROUP BY over
                                the events (json_to_record: each payload parsed once)
            and checks that every read model is equal to the SQL one. For reference it \
            also times the same statement over a copy of the log with jsonb payloads \
            (->>, no parsing), which the log is not. Each rebuild prints the CPU an \
            event of both cores, the client's, and the server's (its backends'): N \
            workers should cost the server no more an event than one.
            """
    )

    @Option(help: "Events in the log.") var events = 1_000_000
    @Option(help: "Carts the events are spread over.") var carts = 20_000
    @Option(help: "Events per rebuild batch (and transaction).") var batchSize = 10_000
    @Option(parsing: .upToNextOption, help: "Worker counts to measure.") var workers: [Int] = [1, 2, 4]

    func run() async throws {
        try await BenchDatabase.withClient(connections: 12) { client in
            emit("server: \(try await BenchDatabase.settings(client))")
            let store = try await BenchLog.fresh(client, schema: "kappa_rebuild")
            let seeded = try await BenchLog.seedCarts(client, store: store, events: events, carts: carts)
            emit("log: \(seeded) events over \(carts) carts; batch \(batchSize)")
            try await client.query("DROP SCHEMA IF EXISTS kappa_rebuild_runtime CASCADE")

            let clock = ContinuousClock()
            try await client.query("DROP TABLE IF EXISTS public.baseline_rebuild")
            try await client.query(
                """
                CREATE TABLE public.baseline_rebuild (cart_id text PRIMARY KEY, items integer NOT NULL, total_cents bigint NOT NULL,
                    checked_out boolean NOT NULL, events bigint NOT NULL, written_by text NOT NULL)
                """)
            // The faster of two runs (the second has the table in the server's cache as the rebuilds will).
            func bestOfTwo(_ sql: String) async throws -> (Duration, String) {
                var time = Duration.seconds(3_600)
                let cpu = MachineCPU.now()
                for _ in 0..<2 {
                    try await client.query("TRUNCATE public.baseline_rebuild")
                    time = min(time, try await clock.measure { try await client.query(PostgresQuery(unsafeSQL: sql)) })
                }
                return (time, MachineCPU.perEvent(since: cpu, events: 2 * seeded))
            }
            // For reference: the same over a copy of the log with jsonb payloads, which SQL reads without parsing.
            try await client.query("DROP TABLE IF EXISTS public.baseline_events_jsonb")
            try await client.query("CREATE TABLE public.baseline_events_jsonb AS SELECT event_type, payload::jsonb AS payload FROM kappa_rebuild.events")
            try await client.query("VACUUM (ANALYZE) public.baseline_events_jsonb")
            let (jsonbTime, jsonbCPU) = try await bestOfTwo(
                BenchLog.cartSummaryBaseline(into: "public.baseline_rebuild", events: "public.baseline_events_jsonb", jsonb: true))
            try await client.query("DROP TABLE public.baseline_events_jsonb")
            try await client.query("CHECKPOINT") // else the copy's WAL sets one off during the rebuilds
            let (sqlTime, sqlCPU) = try await bestOfTwo(BenchLog.cartSummaryBaseline(into: "public.baseline_rebuild", events: "kappa_rebuild.events"))
            let sqlRate = Double(seeded) / sqlTime.seconds
            emit("                       events/s   seconds   × sql time   read model")
            emit("sql GROUP BY          \(formatRate(sqlRate))   \(String(format: "%7.2f", sqlTime.seconds))                          \(sqlCPU)")
            emit(
                "(sql over a jsonb copy \(formatRate(Double(seeded) / jsonbTime.seconds))   \(String(format: "%7.2f", jsonbTime.seconds))"
                    + "                          \(jsonbCPU): not the log as stored; for reference)")
            for count in workers {
                let name = "bench_rebuild_\(count)w"
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(name)_v1 CASCADE"))
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(name) CASCADE"))
                var configuration = ProjectionRuntime.Configuration()
                configuration.schema = "kappa_rebuild_runtime"
                configuration.rebuildBatchSize = batchSize
                configuration.rebuildWorkers = count
                configuration.rebuildPartitions = count
                configuration.rebuildThreshold = 1
                let projection = CartSummaryProjection(name: name, ordering: .perStream)
                let versions = try ProjectionVersions(
                    log: store, readModels: client, projections: [projection],
                    configuration: configuration, logger: quietLogger)
                try await versions.migrate()
                let cpu = MachineCPU.now(), clientCPU = selfCPU(), serverCPU = try await BackendCPU.now(client)
                let time = try await clock.measure { try await versions.rebuild(name, version: 1) }
                let serverSeconds = try await BackendCPU.now(client).since(serverCPU).values.reduce(0, +)
                let cpuUsed =
                    MachineCPU.perEvent(since: cpu, events: seeded)
                    + String(
                        format: ", client %.1f µs, server %.2f µs", (selfCPU() - clientCPU) / Double(seeded) * 1e6,
                        serverSeconds / Double(seeded) * 1e6)
                var differing: Int64 = -1
                for try await value in try await client.query(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT count(*) FROM ((SELECT cart_id, items, total_cents, checked_out, events FROM \(name)_v1.carts
                                                   EXCEPT ALL SELECT cart_id, items, total_cents, checked_out, events FROM public.baseline_rebuild)
                                       UNION ALL (SELECT cart_id, items, total_cents, checked_out, events FROM public.baseline_rebuild
                                                   EXCEPT ALL SELECT cart_id, items, total_cents, checked_out, events FROM \(name)_v1.carts)) d
                            """)
                ).decode(Int64.self) { differing = value }
                let rate = Double(seeded) / time.seconds
                let label = count == 1 ? "kappa 1 worker" : "kappa \(count) workers"
                emit(
                    "\(label.padding(toLength: 20, withPad: " ", startingAt: 0))  \(formatRate(rate))   \(String(format: "%7.2f", time.seconds))"
                        + "   \(String(format: "%9.2f", time.seconds / sqlTime.seconds))   \(differing == 0 ? "equal" : "DIFFERS (\(differing) rows)")   \(cpuUsed)"
                        + String(format: "; %.2f× the jsonb copy's", time.seconds / jsonbTime.seconds))
            }
            emit("targets: ≥ 250000 events/s and ≤ 3× the sql time; N workers' server CPU an event ≤ 1 worker's")
        }
    }
}
