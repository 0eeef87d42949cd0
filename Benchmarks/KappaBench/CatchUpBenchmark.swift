import ArgumentParser
import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import Logging
import PostgresNIO
import ServiceLifecycle

struct CatchUpBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catchup",
        abstract: "Events/s a projection catches up from the log, beside the same read model computed by one SQL statement.",
        discussion: """
            Writes a log of cart events (adds, removals, a checkout per cart) with \
            COPY, then:
              kappa  ProjectionRuntime running CartSummaryProjection (one row per cart)
                     from the start of the log
              sql    the equivalent single INSERT … SELECT … GROUP BY over the events
            and checks that both read models are equal.

            --projection lines catches up CartLinesProjection instead (carts and their \
            lines, three statements an event, as a new user writes a read model) through \
            live batches, statement by statement; lines-pipelined the same with \
            pipelineConnectionString set, each batch one round trip through libpq. Its \
            SQL equivalent computes both tables from the log in three statements. Three \
            statements an event statement by statement are slow: use --events 100000.
            """
    )

    enum Form: String, ExpressibleByArgument, CaseIterable {
        case summary, lines
        case linesPipelined = "lines-pipelined"
    }

    @Option(help: "The read model: summary (CartSummaryProjection, one upsert a batch), lines, or lines-pipelined.") var projection = Form.summary
    @Flag(
        help:
            "With lines or lines-pipelined: catch up in bulk, as the runtime rebuilds a version 10,000 or more events behind, rather than through live batches."
    )
    var bulk = false

    @Option(help: "Events in the log.") var events = 1_000_000
    @Option(help: "Carts the events are spread over.") var carts = 20_000
    @Option(help: "Events per read-model transaction.") var batchSize = 5_000

    func run() async throws {
        try await BenchDatabase.withClient(connections: 8) { client in
            emit("server: \(try await BenchDatabase.settings(client))")
            let store = try await BenchLog.fresh(client, schema: "kappa_catchup")
            let seeded = try await BenchLog.seedCarts(client, store: store, events: events, carts: carts)
            emit("log: \(seeded) events over \(carts) carts")

            var configuration = ProjectionRuntime.Configuration()
            configuration.schema = "kappa_catchup_runtime"
            configuration.batchSize = batchSize
            configuration.listenForAppends = false
            try await client.query("DROP SCHEMA IF EXISTS kappa_catchup_runtime CASCADE")
            try await client.query("DROP SCHEMA IF EXISTS bench_carts_v1 CASCADE")
            if projection != .summary {
                // Through live batches, as a version a few thousand events behind catches up; or in bulk.
                configuration.rebuildThreshold = bulk ? 1 : .max
                configuration.rebuildBatchSize = batchSize
                if projection == .linesPipelined { configuration.pipelineConnectionString = BenchDatabase.connectionString }
            }
            let runtime = try ProjectionRuntime(
                log: store, readModels: client,
                projections: [projection == .summary ? CartSummaryProjection(name: "bench_carts") : CartLinesProjection(name: "bench_carts")],
                configuration: configuration, logger: quietLogger)
            let head = try await store.head()
            let clock = ContinuousClock()
            let kappaTime = try await clock.measure {
                try await BenchRuntime.run(runtime) {
                    try await runtime.waitUntil("bench_carts", hasPassed: head, timeout: .seconds(3_600))
                }
            }

            try await client.query("DROP TABLE IF EXISTS public.baseline_carts, public.baseline_lines")
            try await client.query("CREATE TABLE public.baseline_carts (LIKE bench_carts_v1.carts INCLUDING ALL)")
            let sqlTime: Duration
            var compared = [("carts", "cart_id, items, total_cents, checked_out, events")]
            if projection == .summary {
                sqlTime = try await clock.measure {
                    try await client.query(
                        PostgresQuery(unsafeSQL: BenchLog.cartSummaryBaseline(into: "public.baseline_carts", events: "kappa_catchup.events")))
                }
            } else {
                compared.append(("lines", "cart_id, sku, quantity, unit_price"))
                try await client.query("CREATE TABLE public.baseline_lines (LIKE bench_carts_v1.lines INCLUDING ALL)")
                sqlTime = try await clock.measure {
                    try await client.withConnection { connection in
                        try await connection.query("BEGIN", logger: quietLogger)
                        for statement in BenchLog.cartLinesBaseline(
                            carts: "public.baseline_carts", lines: "public.baseline_lines", events: "kappa_catchup.events")
                        {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: quietLogger)
                        }
                        try await connection.query("COMMIT", logger: quietLogger)
                    }
                }
            }
            var differing: Int64 = 0
            for (table, columns) in compared {
                for try await count in try await client.query(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT count(*) FROM ((SELECT \(columns) FROM bench_carts_v1.\(table) EXCEPT ALL SELECT \(columns) FROM public.baseline_\(table))
                                       UNION ALL (SELECT \(columns) FROM public.baseline_\(table) EXCEPT ALL SELECT \(columns) FROM bench_carts_v1.\(table))) d
                            """)
                ).decode(Int64.self) { differing += count }
            }

            let kappaRate = Double(seeded) / kappaTime.seconds
            let sqlRate = Double(seeded) / sqlTime.seconds
            emit("                       events/s   seconds")
            emit(
                "kappa \((projection.rawValue + (bulk ? " bulk" : "")).padding(toLength: 20, withPad: " ", startingAt: 0)) \(formatRate(kappaRate))   \(String(format: "%7.2f", kappaTime.seconds))   (batch \(batchSize)\(projection == .summary ? "; target ≥ 150000 events/s" : ""))"
            )
            emit("sql equivalent        \(formatRate(sqlRate))   \(String(format: "%7.2f", sqlTime.seconds))")
            emit(
                "kappa/sql: \(String(format: "%.1f%%", 100 * kappaRate / sqlRate)); read models equal: \(differing == 0 ? "yes" : "NO (\(differing) rows differ)")"
            )
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
