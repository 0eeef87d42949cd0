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
            statements an event statement by statement are slow: use --events 100000. \
            lines-folded writes the same tables from each batch folded in memory, five \
            set-based statements a batch (CartLinesFoldedProjection), pipelined.
            """
    )

    enum Form: String, ExpressibleByArgument, CaseIterable {
        case summary, lines
        case linesPipelined = "lines-pipelined"
        case linesFolded = "lines-folded"
    }

    @Option(
        help:
            "The read model: summary (CartSummaryProjection, one upsert a batch), lines, lines-pipelined, or lines-folded (the same two tables, each batch folded into five set-based statements, pipelined)."
    ) var projection = Form.summary
    @Flag(
        help:
            "With lines, lines-pipelined or lines-folded: catch up in bulk, as the runtime rebuilds a version 10,000 or more events behind, rather than through live batches."
    )
    var bulk = false

    @Option(
        help:
            "Where the read model lives: local (on the log's server) or remote (on a second cluster started for the run, fsync on: a separate read-model server)."
    )
    var readModels = ReadModelPlacement.local

    @Option(help: "Events in the log.") var events = 1_000_000
    @Option(help: "Carts the events are spread over.") var carts = 20_000
    @Option(help: "Events per read-model transaction.") var batchSize = 5_000
    @Flag(
        help:
            "Also catch up the Python eventsourcing library's projection of the same read model (carts and lines, three statements an event, its tracking record in each event's transaction) on the same carts (Benchmarks/peer; scripts/bench sets up its interpreter)."
    )
    var peer = false

    func run() async throws {
        try await BenchDatabase.withClient(connections: 8) { client in
            emit("server: \(try await BenchDatabase.settings(client))")
            let store = try await BenchLog.fresh(client, schema: "kappa_catchup")
            let seeded = try await BenchLog.seedCarts(client, store: store, events: events, carts: carts)
            emit("log: \(seeded) events over \(carts) carts")

            let placement = readModels
            let projection = projection, bulk = bulk, batchSize = batchSize
            // The read model's tables as the runtime wrote them: a digest of their rows, in order.
            let (kappaTime, kappaDigest) = try await ReadModelServer.with(placement, local: client, connections: 8) { readModels, connectionString in
                var configuration = ProjectionRuntime.Configuration()
                configuration.schema = "kappa_catchup_runtime"
                configuration.batchSize = batchSize
                configuration.listenForAppends = false
                try await readModels.query("DROP SCHEMA IF EXISTS kappa_catchup_runtime CASCADE")
                try await readModels.query("DROP SCHEMA IF EXISTS bench_carts_v1 CASCADE")
                if projection != .summary {
                    // Through live batches, as a version a few thousand events behind catches up; or in bulk.
                    configuration.rebuildThreshold = bulk ? 1 : .max
                    configuration.rebuildBatchSize = batchSize
                    if projection != .lines { configuration.pipelineConnectionString = connectionString }
                }
                let runtime = try ProjectionRuntime(
                    log: store, readModels: readModels,
                    projections: [Self.projection(projection)],
                    configuration: configuration, logger: quietLogger)
                let head = try await store.head()
                let elapsed = try await ContinuousClock().measure {
                    try await BenchRuntime.run(runtime) {
                        try await runtime.waitUntil("bench_carts", hasPassed: head, timeout: .seconds(3_600))
                    }
                }
                return (elapsed, try await Self.digest(readModels, schema: "bench_carts_v1", lines: projection != .summary))
            }

            // The baseline's tables: the projection's own, in a schema of the log's server.
            let tables = projection == .summary ? CartSummaryProjection(name: "bench_carts").setupSQL : CartLinesProjection(name: "bench_carts").setupSQL
            try await client.withConnection { connection in
                // The fixtures' set-up is CREATE TABLE statements with no semicolon inside.
                let creates = tables.split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
                for statement in ["DROP SCHEMA IF EXISTS bench_baseline CASCADE", "CREATE SCHEMA bench_baseline", "SET search_path TO bench_baseline"] + creates
                    + ["RESET search_path"]
                {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: quietLogger)
                }
            }
            let clock = ContinuousClock()
            let sqlTime: Duration
            if projection == .summary {
                sqlTime = try await clock.measure {
                    try await client.query(
                        PostgresQuery(unsafeSQL: BenchLog.cartSummaryBaseline(into: "bench_baseline.carts", events: "kappa_catchup.events")))
                }
            } else {
                sqlTime = try await clock.measure {
                    try await client.withConnection { connection in
                        try await connection.query("BEGIN", logger: quietLogger)
                        for statement in BenchLog.cartLinesBaseline(
                            carts: "bench_baseline.carts", lines: "bench_baseline.lines", events: "kappa_catchup.events")
                        {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: quietLogger)
                        }
                        try await connection.query("COMMIT", logger: quietLogger)
                    }
                }
            }
            let equal = kappaDigest == (try await Self.digest(client, schema: "bench_baseline", lines: projection != .summary))

            let kappaRate = Double(seeded) / kappaTime.seconds
            let sqlRate = Double(seeded) / sqlTime.seconds
            emit("                       events/s   seconds")
            emit(
                "kappa \((projection.rawValue + (bulk ? " bulk" : "")).padding(toLength: 20, withPad: " ", startingAt: 0)) \(formatRate(kappaRate))   \(String(format: "%7.2f", kappaTime.seconds))   (batch \(batchSize)\(projection == .summary ? "; target ≥ 150000 events/s" : ""))"
            )
            emit("sql equivalent        \(formatRate(sqlRate))   \(String(format: "%7.2f", sqlTime.seconds))")
            emit(
                "kappa/sql: \(String(format: "%.1f%%", 100 * kappaRate / sqlRate)); read models equal: \(equal ? "yes" : "NO")"
            )
            if peer {
                let py = try PeerBaseline.run("catchup", ["carts": carts, "events-per-cart": max(2, events / carts)])
                let pyRate = py["events_per_second"] ?? 0
                emit("py-eventsourcing      \(formatRate(pyRate))   \(String(format: "%7.2f", py["seconds"] ?? 0))   (its own log of the same carts)")
                emit("kappa/py: \(String(format: "%.1f×", kappaRate / pyRate))\(projection == .summary ? "" : " (target ≥ 50×)")")
            }
        }
    }
}

extension CatchUpBenchmark {
    static func projection(_ form: Form) -> any Projection {
        switch form {
        case .summary: CartSummaryProjection(name: "bench_carts")
        case .lines, .linesPipelined: CartLinesProjection(name: "bench_carts")
        case .linesFolded: CartLinesFoldedProjection(name: "bench_carts")
        }
    }

    /// An MD5 of the read model's rows in key order, so that read models on different servers compare.
    static func digest(_ client: PostgresClient, schema: String, lines: Bool) async throws -> [String] {
        var queries = ["SELECT md5(string_agg((cart_id, items, total_cents, checked_out, events)::text, ',' ORDER BY cart_id)) FROM \(schema).carts"]
        if lines {
            queries.append("SELECT md5(string_agg((cart_id, sku, quantity, unit_price)::text, ',' ORDER BY cart_id, sku)) FROM \(schema).lines")
        }
        var digests: [String] = []
        for query in queries {
            for try await digest in try await client.query(PostgresQuery(unsafeSQL: query)).decode(String?.self) { digests.append(digest ?? "") }
        }
        return digests
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
