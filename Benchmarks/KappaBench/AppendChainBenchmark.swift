import ArgumentParser
import Foundation
import Kappa
import KappaPostgres
import Logging
import PostgresNIO

/// What the log's per-row triggers cost an append: the same appends to logs migrated up to three
/// points, in the same run.
struct AppendChainBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append-chain",
        abstract: "Events/s appended to a log without the role split, with it, and with hash chains, in the same run.",
        discussion: """
            Three logs, each in a fresh schema per round, migrated up to:
              0004      no per-row trigger (before the role split)
              roles     0005: the trigger that stamps each row's order key
              chain     0006: and the hash chain's trigger (a predecessor probe and a SHA-256 a row)
            Each case appends the same events through PostgresEventStore (prepared statements, exact \
            expected versions, streams of 50 transactions) to each log in turn, the order rotating \
            from round to round. Each figure is the median of --rounds runs; the server's CPU per \
            event is that of the appending connections' backends. Then the chains of a log of \
            --verify-events cart events are verified (PostgresEventStore.verifyChains).
            """
    )

    @Option(help: "Events per writer for the single-event cases.") var singleEvents = 1_500
    @Option(help: "Batches per writer for the batched cases.") var batches = 150
    @Option(help: "Runs per figure; the median is printed.") var rounds = 5
    @Option(help: "Events in the log whose chains are verified at the end (0: none).") var verifyEvents = 200_000

    struct Variant {
        let name: String
        let migrations: Int
    }
    static let variants = [Variant(name: "0004", migrations: 4), Variant(name: "roles", migrations: 5), Variant(name: "chain", migrations: 6)]

    func run() async throws {
        let cases = [
            AppendBenchmark.Case(name: "1 event/txn,    1 writer ", writers: 1, batchSize: 1, operations: singleEvents, target: 0),
            AppendBenchmark.Case(name: "1 event/txn,    8 writers", writers: 8, batchSize: 1, operations: max(1, singleEvents / 2), target: 0),
            AppendBenchmark.Case(name: "100 events/txn, 1 writer ", writers: 1, batchSize: 100, operations: batches, target: 0),
            AppendBenchmark.Case(name: "100 events/txn, 8 writers", writers: 8, batchSize: 100, operations: max(1, batches / 4), target: 0),
        ]
        let payload = Data(#"{"cartId":"c-000001","sku":"SKU-00042","quantity":2,"unitPrice":1299}"#.utf8)
        try await BenchDatabase.withClient(connections: 10) { client in
            emit("server: \(try await BenchDatabase.settings(client))")
            emit(
                "case                         0004 ev/s   roles ev/s   chain ev/s   roles/0004   chain/0004   chain/roles   server µs/event: 0004  roles  chain"
            )
            for benchCase in cases {
                var rates = [[Double]](repeating: [], count: Self.variants.count)
                var cpu = [[Double]](repeating: [], count: Self.variants.count)
                for round in 0..<rounds {
                    for offset in 0..<Self.variants.count {
                        let index = (round + offset) % Self.variants.count
                        let (rate, serverCPU) = try await appendRate(benchCase, variant: Self.variants[index], client: client, payload: payload)
                        rates[index].append(rate)
                        cpu[index].append(serverCPU)
                    }
                }
                let r = rates.map(median), c = cpu.map(median)
                func percent(_ a: Double, _ b: Double) -> String { String(format: "%9.1f%%", 100 * a / b) }
                emit(
                    "\(benchCase.name)   \(formatRate(r[0]))    \(formatRate(r[1]))    \(formatRate(r[2]))   \(percent(r[1], r[0]))   \(percent(r[2], r[0]))    \(percent(r[2], r[1]))"
                        + String(format: "                    %5.1f  %5.1f  %5.1f", c[0], c[1], c[2]))
            }
            if verifyEvents > 0 { try await verify(client) }
        }
    }

    /// How fast `verifyChains` reads and recomputes a log of cart streams (seeded by COPY, which the
    /// chain's trigger hashes as it goes).
    func verify(_ client: PostgresClient) async throws {
        let store = try await BenchLog.fresh(client, schema: "kappa_bench_verify")
        let seeded = try await BenchLog.seedCarts(client, store: store, events: verifyEvents, carts: max(1, verifyEvents / 50))
        let cpu = MachineCPU.now()
        let verification = try await store.verifyChains()
        let seconds = Double(verification.elapsed.components.seconds) + Double(verification.elapsed.components.attoseconds) / 1e18
        emit(
            "verify: \(verification.eventsChecked) of \(seeded) events in \(verification.streamsChecked) streams in "
                + String(format: "%.2f s, %.0f events/s, ", seconds, Double(verification.eventsChecked) / seconds)
                + MachineCPU.perEvent(since: cpu, events: verification.eventsChecked) + (verification.isIntact ? "" : "; BROKEN"))
        try await client.query("DROP SCHEMA kappa_bench_verify CASCADE")
    }

    /// Events/s appending `benchCase` to a fresh log migrated up to `variant`, and the server's CPU
    /// µs per event (the appending backends').
    func appendRate(_ benchCase: AppendBenchmark.Case, variant: Variant, client: PostgresClient, payload: Data) async throws -> (Double, Double) {
        let schema = "kappa_bench_chain"
        try await client.query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE")
        try await Migrator(client: client, schema: schema, logger: quietLogger)
            .migrate(Array(Migration.eventLog.prefix { $0.version <= variant.migrations }))
        let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: quietLogger)
        try await client.query("CHECKPOINT")
        let before = try await BackendCPU.now(client)
        let rate =
            try await measure(writers: benchCase.writers, perWriter: benchCase.operations) { writer, index in
                let events = (0..<benchCase.batchSize).map { _ in
                    NewEvent(id: UUID(), eventType: "ItemAddedToCart", schemaVersion: 1, payload: payload, recordedAt: Date())
                }
                _ = try await store.append(
                    events, to: StreamID("bench-\(writer)-\(index / 50)"),
                    expectedVersion: .exact(Int64(index % 50 * benchCase.batchSize)))
            } * Double(benchCase.batchSize)
        let server = try await BackendCPU.now(client).since(before)["kappa-bench"] ?? 0
        let events = Double(benchCase.writers * benchCase.operations * benchCase.batchSize)
        try await client.query("DROP SCHEMA \(unescaped: schema) CASCADE")
        return (rate, server / events * 1e6)
    }
}
