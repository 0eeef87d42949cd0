import ArgumentParser
import Foundation
import Kappa
import KappaPostgres
import Logging
import PostgresNIO

struct AppendBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Events/s appended through PostgresEventStore, beside plain SQL and COPY of the same rows.",
        discussion: """
            Four cases: one event per transaction with 1 and 32 writers, batches of \
            100 with 1 and 4 writers. Each case writes the same rows four ways, in fresh \
            tables of the same shape:
              kappa     PostgresEventStore.append, exact expected version (prepared)
              pgbench   pgbench -M prepared inserting the same single rows (C, libpq):
                        the one-event cases only; into the plain table, and into
                        the log's own events table (pgbench→log: its triggers firing)
            and the CPU this process spent per event on kappa's appends.
              sql       a plain INSERT through the same driver and pool
                        (VALUES for one row, unnest for a batch)
              prepared  the same INSERT as a PostgresPreparedStatement
              copy      COPY FROM STDIN of the same rows, one COPY per transaction
            Each figure is the median of --rounds runs; the ways alternate within each \
            round. With --peer, the Python eventsourcing library appends new carts \
            one event a transaction with one writer and with 8, in the same server.
            """
    )

    @Option(help: "Events per writer for the single-event cases.") var singleEvents = 1_500
    @Option(help: "Batches per writer for the batched cases.") var batches = 150
    @Option(help: "Runs per figure; the median is printed.") var rounds = 3
    @Flag(help: "Also run the Python eventsourcing library's appends (Benchmarks/peer; scripts/bench sets up its interpreter).") var peer = false

    struct Case {
        let name: String
        let writers: Int
        let batchSize: Int
        let operations: Int
        let target: Double
    }

    func run() async throws {
        let cases = [
            Case(name: "1 event/txn,   1 writer ", writers: 1, batchSize: 1, operations: singleEvents, target: 0.85),
            Case(name: "1 event/txn,   8 writers", writers: 8, batchSize: 1, operations: max(1, singleEvents / 2), target: 0.85),
            Case(name: "1 event/txn,  32 writers", writers: 32, batchSize: 1, operations: max(1, singleEvents / 4), target: 0.85),
            Case(name: "100 events/txn, 1 writer ", writers: 1, batchSize: 100, operations: batches, target: 0.70),
            Case(name: "100 events/txn, 4 writers", writers: 4, batchSize: 100, operations: batches / 2, target: 0.70),
        ]
        let payload = Data(#"{"cartId":"c-000001","sku":"SKU-00042","quantity":2,"unitPrice":1299}"#.utf8)
        try await BenchDatabase.withClient(connections: 34) { client in
            emit("server: \(try await BenchDatabase.settings(client))")
            emit(
                "case                       kappa ev/s    sql ev/s  prepared ev/s  copy ev/s   kappa/sql  target  kappa/prepared   pgbench ev/s  kappa/pgbench  pgbench→log ev/s  kappa/pgbench→log  kappa client µs/event"
            )
            var kappaRates: [Int: Double] = [:]
            for benchCase in cases {
                var kappa: [Double] = [], sql: [Double] = [], prepared: [Double] = [], copy: [Double] = []
                var pgbench: [Double] = [], pgbenchLog: [Double] = []
                // This process's CPU an event: what the client spends per append (the driver's threads too).
                var kappaCPU: [Double] = []
                // Group commit: groups of concurrent appends sent as one statement, over every round.
                var groups = 0, libpqAppends = 0
                let events = Double(benchCase.writers * benchCase.operations * benchCase.batchSize)
                for round in 0..<rounds {
                    let tables = try await AppendTables.make(client, round: round)
                    sql.append(try await tables.plainSQL(benchCase, payload: payload))
                    let cpu = selfCPU(), groupsBefore = tables.store.appendGroups.groupsSent
                    let libpqBefore = tables.store.libpqConnections.borrows.load(ordering: .relaxed)
                    kappa.append(try await tables.kappa(benchCase, payload: payload))
                    groups += tables.store.appendGroups.groupsSent - groupsBefore
                    libpqAppends += tables.store.libpqConnections.borrows.load(ordering: .relaxed) - libpqBefore
                    kappaCPU.append((selfCPU() - cpu) / events * 1e6)
                    prepared.append(try await tables.preparedSQL(benchCase, payload: payload))
                    if let rate = try await tables.pgbench(benchCase, payload: payload) { pgbench.append(rate) }
                    if let rate = try await tables.pgbench(benchCase, payload: payload, logTable: true) { pgbenchLog.append(rate) }
                    copy.append(try await tables.copy(benchCase, payload: payload))
                    try await tables.drop()
                }
                let k = median(kappa), s = median(sql), p = median(prepared), c = median(copy)
                if benchCase.batchSize == 1 { kappaRates[benchCase.writers] = k }
                let g = pgbench.isEmpty ? nil : median(pgbench), gl = pgbenchLog.isEmpty ? nil : median(pgbenchLog)
                emit(
                    "\(benchCase.name)  \(formatRate(k))   \(formatRate(s))     \(formatRate(p))  \(formatRate(c))   \(String(format: "%6.1f%%", 100 * k / s))   ≥\(Int(benchCase.target * 100))%   \(String(format: "%6.1f%%", 100 * k / p))"
                        + "    \(g.map(formatRate) ?? "        —")     \(g.map { String(format: "%6.1f%%", 100 * k / $0) } ?? "     —")"
                        + "        \(gl.map(formatRate) ?? "        —")         \(gl.map { String(format: "%6.1f%%", 100 * k / $0) } ?? "     —")"
                        + String(format: "          %6.1f", median(kappaCPU))
                        + (groups > 0 ? "   (\(groups) groups for \(rounds * benchCase.writers * benchCase.operations) appends)" : "")
                        + (libpqAppends > 0 ? "   (\(libpqAppends) appends through libpq)" : "")
                )
            }
            if peer {
                emit("py-eventsourcing, 1 event a transaction, a new cart each   py ev/s   kappa ev/s   kappa/py   (target ≥ 2× with 1 writer)")
                for writers in [1, 8] {
                    let py = try PeerBaseline.run("append", ["writers": writers, "events": singleEvents])["events_per_second"] ?? 0
                    let k = kappaRates[writers] ?? 0
                    emit(
                        "  \(writers) writer\(writers == 1 ? " " : "s")                                          \(formatRate(py))   \(formatRate(k))   \(String(format: "%5.2f×", k / py))"
                    )
                }
            }
        }
    }
}
