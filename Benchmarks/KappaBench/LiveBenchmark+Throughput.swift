import Foundation
import KappaFixtures
import KappaPostgres
import PostgresNIO

/// One throughput phase's figures, per append where they are CPU time.
private struct Phase {
    var rate: Double
    /// The machine's CPU seconds (every process), this process's, and the server's by process group (``BackendCPU``).
    var machine: Double, client: Double, server: [String: Double]
    var batches = 0
}

extension LiveBenchmark {
    /// Rounds of 32 writers with no projection and with `form` following live, printed round by round,
    /// then as medians and per-append CPU by where it was spent.
    ///
    /// The log grows through the run and the machine drifts (checkpoints, autovacuum, neighbours), so
    /// each round has both phases, and every other round runs them in the other order: a phase that
    /// always came second would carry the drift alone.
    func throughput(
        store: PostgresEventStore, client: PostgresClient, notifier: LogNotifier, form: String,
        makeRuntime: @Sendable (String) throws -> ProjectionRuntime
    ) async throws {
        let kinds = [
            "single": "a single statement", "none": "writing nothing", "transaction": "a transaction",
            "lines": "three statements an event", "lines-pipelined": "three statements an event, pipelined",
        ]
        let kind = kinds[form] ?? form
        emit("32 writers, single-event appends, \(32 * perWriter) per round (\(workload.rawValue)), the projection as \(kind)   ev/s")
        var plain: [Phase] = [], following: [Phase] = []
        for round in 0..<rounds {
            for followingFirst in round % 2 == 1 ? [true, false] : [false, true] {
                if followingFirst {
                    let runtime = try makeRuntime(form)
                    following.append(
                        try await BenchRuntime.run(notifier, runtime) {
                            // Caught up before anything is measured.
                            let caughtUp = try await store.append([CartEvents.added(cart: 0)], to: "cart-warm-up", expectedVersion: .any)
                            try await runtime.waitUntil(Self.projection(form), hasPassed: caughtUp.lastPosition!, timeout: .seconds(60))
                            let batches = runtime.batchesCommitted
                            var phase = try await measurePhase(store: store, client: client, round: round, following: true)
                            phase.batches = runtime.batchesCommitted - batches
                            return phase
                        })
                } else {
                    plain.append(try await measurePhase(store: store, client: client, round: round, following: false))
                }
            }
            let (p, f) = (plain[round], following[round])
            emit(
                "  round \(round + 1)\(round % 2 == 1 ? "*" : " "): no projection \(formatRate(p.rate))   following live \(formatRate(f.rate))   \(String(format: "%.1f%%", 100 * f.rate / p.rate))"
                    + String(
                        format: "   CPU/append %.0f µs (client %.0f), %.0f µs (client %.0f) following; %d batches",
                        p.machine * 1e6, p.client * 1e6, f.machine * 1e6, f.client * 1e6, f.batches))
        }
        guard rounds > 0 else { return }
        // Each round's ratio compares phases run back to back; the medians of the rates compare phases
        // minutes apart, which the machine's drift moves more.
        let ratios = zip(following, plain).map { 100 * $0.rate / $1.rate }.sorted()
        emit(
            String(
                format: "  (* following first)  median of the rounds' ratios %.1f%% (target ≥ 90%%); middle half %.1f–%.1f%%; %d of %d rounds ≥ 90%%",
                median(ratios), ratios[ratios.count / 4], ratios[(3 * ratios.count) / 4], ratios.filter { $0 >= 90 }.count, ratios.count))
        let (p, f) = (median(plain.map(\.rate)), median(following.map(\.rate)))
        emit("  median rates: no projection \(formatRate(p))   following live \(formatRate(f))   \(String(format: "%.1f%%", 100 * f / p))")
        // Where following's CPU goes: the appends' server processes, the runtime's (its own pool), the
        // server's background processes, this process (the writers and the runtime's client side).
        func cpu(_ phases: [Phase]) -> String {
            var parts = [("machine", median(phases.map(\.machine))), ("this process", median(phases.map(\.client)))]
            for group in Set(phases.flatMap(\.server.keys)).sorted() {
                let value = median(phases.map { $0.server[group] ?? 0 })
                if value >= 0.5e-6 { parts.append((group, value)) }
            }
            return parts.map { String(format: "%@ %.1f", $0.0, $0.1 * 1e6) }.joined(separator: ", ")
        }
        emit("  CPU µs/append (medians), no projection: \(cpu(plain))")
        emit("  CPU µs/append (medians), following:     \(cpu(following))")
    }

    private func measurePhase(store: PostgresEventStore, client: PostgresClient, round: Int, following: Bool) async throws -> Phase {
        let events = Double(32 * perWriter)
        let machine = MachineCPU.now(), start = selfCPU(), server = try await BackendCPU.now(client)
        let rate = try await measure(writers: 32, perWriter: perWriter) { [workload] writer, index in
            try await workload.append(store, round: round, following: following, writer: writer, index: index)
        }
        let (machineCPU, clientCPU) = (MachineCPU.since(machine), selfCPU() - start)
        let servers = try await BackendCPU.now(client).since(server)
        return Phase(rate: rate, machine: machineCPU / events, client: clientCPU / events, server: servers.mapValues { $0 / events })
    }
}
