import ArgumentParser
import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

struct LiveBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live",
        abstract: "Latency from append commit to the read-model row being visible, and what following live costs appends.",
        discussion: """
            Latency: appends one event at a steady rate while a ProjectionRuntime (in \
            this process, woken by a LogNotifier) follows the log; for each append, the \
            time from its commit until the projection's checkpoint — committed with \
            the row — has passed it. Printed as p50/p99 per rate.

            Throughput: 32 writers appending single events (--workload), with no \
            projection running (baseline) and with the projection following live; each \
            round has both phases, every other round (marked *) following first, so \
            that the drift of a growing log falls on both.

            The projection folds each batch into one upsert. With --batches single it \
            is a SingleStatementProjection: each live batch is that upsert and the \
            fenced checkpoint move in one statement. With --batches transaction it is a \
            plain Projection: BEGIN, the upsert, the checkpoint move, COMMIT. With \
            --batches lines it is a read model of carts and their lines written as a new \
            user writes one, three statements an event (the cart's row, its line, its \
            totals recomputed), statement by statement; lines-pipelined is the same with \
            pipelineConnectionString set, each batch one round trip through libpq. \
            Latency is measured for each form given; the throughput rounds use the first.

            Each round also prints CPU time per append — the machine's (both cores, \
            every process: the server and this client), and this process's — and the \
            live batches the projection committed; the summary splits the server's CPU \
            by process group (the appends' connections, the runtime's own pool, the \
            server's background processes), read from /proc.
            """
    )

    @Option(help: "Appends per second to measure latency at, comma-separated.") var rates = "100,1000"
    @Option(help: "Seconds per rate (a pause of the machine of a second or so moves the p99 of a short run).") var seconds = 15
    @Option(help: "Appends per writer in each throughput round.") var perWriter = 300
    @Option(
        help:
            "What the throughput rounds append: carts (the sample's shape: each writer fills carts of \(Workload.eventsPerCart) events in turn — adds, a removal, a checkout — so a batch updates fewer rows than it has events) or new-carts (every append a cart of its own: a new read-model row per event, the costliest case for the projection)."
    )
    var workload = Workload.carts
    @Option(help: "Throughput rounds, each with and without a projection following; the medians are printed.") var rounds = 21

    @Option(help: "The runtime's liveCoalescing in milliseconds (0: off; default: the runtime's own, 10).") var coalescing: Int?
    @Option(help: "The LogNotifier's minimumInterval in milliseconds (default: the notifier's own, 2.5).") var notifyInterval: Double?

    @Option(
        help:
            "The projection's forms, comma-separated: single (a SingleStatementProjection), transaction (a plain Projection), lines (three statements an event, statement by statement), lines-pipelined (the same, one round trip a batch through libpq), none (a projection that writes nothing: what following costs without the read model's writes)."
    )
    var batches = "single,transaction,lines,lines-pipelined"

    @Option(
        help:
            "Where the read model and the runtime's tables live: local (on the log's server) or remote (on a second cluster started for the run, fsync on: a separate read-model server; the server CPU split then counts the log's server only)."
    )
    var readModels = ReadModelPlacement.local

    @Flag(help: "Print each 50 ms of a latency run: appends, median and worst latency.") var timeline = false
    @Flag(
        help:
            "Also measure the Python eventsourcing library at each rate: its projection of the same read model (carts and lines, three statements an event) in a process of its own, append commit to its tracking record passing the event, polled every 0.5 ms (Benchmarks/peer; scripts/bench sets up its interpreter); and Kappa measured the same way: CartLinesProjection pipelined in a fleet-worker process woken by NOTIFY, its checkpoint polled every 0.5 ms."
    )
    var peer = false

    func run() async throws {
        let rateList = rates.split(separator: ",").compactMap { Int($0) }
        try await BenchDatabase.withClient(connections: 40, name: "kappa-bench appends") { client in
            try await BenchDatabase.withClient(connections: 4, name: "kappa-bench runtime") { runtimeClient in
                try await ReadModelServer.with(readModels, local: runtimeClient, connections: 4) { readModelClient, readModelConnection in
                    emit("server: \(try await BenchDatabase.settings(client))")
                    let notifier =
                        try notifyInterval.map {
                            try LogNotifier(client: client, schema: "kappa_live", minimumInterval: .microseconds(Int64($0 * 1000)), logger: quietLogger)
                        } ?? LogNotifier(client: client, schema: "kappa_live", logger: quietLogger)
                    // KAPPA_BENCH_APPEND_LIBPQ=0: the appends through postgres-nio only.
                    let store = try await BenchLog.fresh(
                        client, schema: "kappa_live", notifier: notifier, libpqAppends: ProcessInfo.processInfo.environment["KAPPA_BENCH_APPEND_LIBPQ"] != "0")
                    try await readModelClient.query("DROP SCHEMA IF EXISTS kappa_live_runtime CASCADE")
                    // The runtime reads the log and writes its read model through a pool of its own, so that
                    // the server's CPU for appends and for following can be told apart (``BackendCPU``).
                    let runtimeLog = try PostgresEventStore(client: runtimeClient, configuration: store.configuration, logger: quietLogger)
                    let configuration = {
                        var configuration = ProjectionRuntime.Configuration()
                        configuration.schema = "kappa_live_runtime"
                        if let coalescing { configuration.liveCoalescing = .milliseconds(coalescing) }
                        return configuration
                    }()
                    let forms = batches.split(separator: ",").map(String.init)
                    guard !forms.isEmpty, forms.allSatisfy({ Self.forms.contains($0) }) else {
                        throw ValidationError("--batches takes \(Self.forms.joined(separator: ", ")), comma-separated")
                    }
                    for form in forms { try await readModelClient.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(Self.projection(form))_v1 CASCADE")) }
                    @Sendable func makeRuntime(_ form: String) throws -> ProjectionRuntime {
                        let name = Self.projection(form)
                        let chosen: any Projection =
                            switch form {
                            case "single": CartSummaryInOneStatement(CartSummaryProjection(name: name))
                            case "none": CheckpointOnly(name: name)
                            case "lines", "lines-pipelined": CartLinesProjection(name: name)
                            default: CartSummaryProjection(name: name)
                            }
                        var configuration = configuration
                        if form == "lines-pipelined" { configuration.pipelineConnectionString = readModelConnection }
                        return try ProjectionRuntime(
                            log: runtimeLog, readModels: readModelClient, projections: [chosen],
                            notifier: notifier, configuration: configuration, logger: quietLogger)
                    }
                    // Every pooled connection has run an append once (its first call compiles the append
                    // function and plans its statements: ~10 ms each, which is not what is measured here).
                    _ = try await measure(writers: 40, perWriter: 2) { writer, index in
                        _ = try await store.append([CartEvents.added(cart: 0)], to: StreamID("cart-warm-\(writer)-\(index)"), expectedVersion: .noStream)
                    }

                    emit("append commit → row visible   p50 ms    p99 ms    max ms   (target p99 ≤ 10 ms at 1000/s)")
                    for form in forms {
                        let latencyRuntime = try makeRuntime(form)
                        let latencies = try await BenchRuntime.run(notifier, store, latencyRuntime) {
                            // The runtime has started, set up and caught up before anything is measured; the
                            // paced appends then wait on every connection the pool has.
                            let warmUp = try await store.append([CartEvents.added(cart: 0)], to: "cart-warm-up", expectedVersion: .any)
                            try await latencyRuntime.waitUntil(Self.projection(form), hasPassed: warmUp.lastPosition!, timeout: .seconds(60))
                            var latencies: [(Int, [Duration])] = []
                            for rate in rateList {
                                latencies.append(
                                    (
                                        rate,
                                        try await paced(rate: rate, seconds: seconds, store: store, runtime: latencyRuntime, projection: Self.projection(form))
                                    ))
                            }
                            return latencies
                        }
                        for (rate, samples) in latencies { emit(Self.latencyRow(form.padding(toLength: 16, withPad: " ", startingAt: 0), rate, samples)) }
                    }

                    if peer {
                        // Kappa measured as the peer is: its projector in a process of its own, polled.
                        let (sent, carried) = (notifier.notificationsSent, notifier.notificationsCarried)
                        let own = try await BenchRuntime.run(notifier, store) { try await polledInOwnProcess(rates: rateList, store: store, client: client) }
                        for (rate, samples) in own { emit(Self.latencyRow("kappa, own process", rate, samples) + "  (polled, as the peer)") }
                        emit(
                            "  (notifications: \(notifier.notificationsSent - sent), \(notifier.notificationsCarried - carried) of them in the appends' own transactions)"
                        )
                        for rate in rateList {
                            let py = try PeerBaseline.run("live", ["rate": rate, "seconds": seconds])
                            let missing = Int(py["missing"] ?? 0)
                            emit(
                                "  py-eventsourcing \(String(format: "%5d", rate)) appends/s (\(Int(py["samples"] ?? 0)))  \(String(format: "%8.2f  %8.2f  %8.2f", py["p50_ms"] ?? 0, py["p99_ms"] ?? 0, py["max_ms"] ?? 0))\(missing > 0 ? "  (\(missing) not visible within 30 s)" : "")"
                            )
                        }
                    }
                    try await throughput(store: store, client: client, notifier: notifier, form: forms[0], makeRuntime: makeRuntime)
                }
            }
        }
    }

    static let forms = ["single", "transaction", "lines", "lines-pipelined", "none"]

    /// Where in the run the slow ones were: the worst 1 % of `samples` (each append's index in the
    /// run and its latency) by second of the run — a p99 made in one or two seconds is a pause of
    /// the machine, one spread over the run is the path's own.
    static func emitSlowest(_ samples: [(Int, Duration)], rate: Int, label: String) {
        let slow = samples.sorted { $0.1 > $1.1 }.prefix(max(1, samples.count / 100))
        let bySecond = Dictionary(grouping: slow, by: { $0.0 / rate }).mapValues(\.count).sorted { $0.key < $1.key }
        emit("  \(label): slowest 1 % by second of the run: \(bySecond.map { "s\($0.key)×\($0.value)" }.joined(separator: " "))")
    }

    /// One line of the latency table: `label`, the rate, and the p50, p99 and worst of `samples` in ms.
    static func latencyRow(_ label: String, _ rate: Int, _ samples: [Duration]) -> String {
        let sorted = samples.sorted()
        func at(_ q: Double) -> String {
            sorted.isEmpty ? "       —" : String(format: "%8.2f", sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))].seconds * 1_000)
        }
        return "  \(label) \(String(format: "%5d", rate)) appends/s (\(sorted.count))  \(at(0.5))  \(at(0.99))  \(at(1.0))"
    }

    /// The projection's name for `form`.
    static func projection(_ form: String) -> String { "live_\(form.replacingOccurrences(of: "-", with: "_"))" }

    /// Appends at `rate` per second for `seconds`; returns each append's commit-to-visible latency.
    private func paced(rate: Int, seconds: Int, store: PostgresEventStore, runtime: ProjectionRuntime, projection: String) async throws -> [Duration] {
        let clock = ContinuousClock()
        let start = clock.now
        let total = rate * seconds
        let samples = try await withThrowingTaskGroup(of: (Int, Duration).self) { group in
            for i in 0..<total {
                try await clock.sleep(until: start + .seconds(Double(i) / Double(rate)))
                group.addTask {
                    let result = try await store.append([CartEvents.added(cart: i % 500)], to: StreamID("cart-live-\(i % 500)"), expectedVersion: .any)
                    let committed = clock.now
                    try await runtime.waitUntil(projection, hasPassed: result.lastPosition!, timeout: .seconds(30))
                    return (i, clock.now - committed)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        Self.emitSlowest(samples, rate: rate, label: "\(rate)/s")
        if timeline {
            // Per 50 ms of the run: appends, and their worst and median latency.
            let buckets = Dictionary(grouping: samples, by: { $0.0 * 20 / rate }).sorted { $0.key < $1.key }
            for (bucket, items) in buckets {
                let latencies = items.map { $0.1.seconds * 1_000 }.sorted()
                emit(
                    String(format: "    t=%5.2fs n=%3d p50=%6.2f max=%6.2f", Double(bucket) / 20, items.count, latencies[latencies.count / 2], latencies.last!))
            }
        }
        return samples.map(\.1)
    }
}

/// CPU seconds this process (the benchmark's client side) has used.
func selfCPU() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// A projection that handles no event: its batches read the log and move the checkpoint only.
struct CheckpointOnly: Projection {
    let name: String
    var version: Int { 1 }
    var setupSQL: String { "CREATE TABLE nothing (id int)" }
    var eventTypes: Set<String>? { ["NoSuchEvent"] }
    func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {}
}
