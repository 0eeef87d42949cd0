import ArgumentParser
import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import PostgresNIO
import Synchronization

extension LiveBenchmark {
    static let ownProcessRuntime = "kappa_live_own_runtime"

    /// Live latency measured as the peer's is (``PeerBaseline``): the projection (`CartLinesProjection`,
    /// pipelined) in a process of its own (a `fleet-worker`, woken by NOTIFY through the log's
    /// server), and each append's latency from its return until the projection's checkpoint, polled
    /// every 0.5 ms by a thread of this process on a libpq connection (the peer's poller is a thread on psycopg, libpq too), has passed it.
    func polledInOwnProcess(rates: [Int], store: PostgresEventStore, client: PostgresClient) async throws -> [(Int, [Duration])] {
        for schema in [Self.ownProcessRuntime, "\(FleetWorker.projection(0))_v1", FleetWorker.projection(0)] {
            try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE"))
        }
        // Its store holds libpq connections for the runners' page reads (two of its six pooled ones
        // held for appends too), as an application with `appendConnectionString` does;
        // KAPPA_BENCH_CLIENT_READS=1: through postgres-nio instead.
        let worker = try FleetWorker.spawn(
            versions: 1, connections: 6, log: store.configuration.schema, runtime: Self.ownProcessRuntime,
            libpqReads: ProcessInfo.processInfo.environment["KAPPA_BENCH_CLIENT_READS"] == nil)
        defer {
            worker.terminate()
            worker.waitUntilExit()
        }
        let checkpointQuery = PostgresQuery(
            unsafeSQL: """
                SELECT checkpoint_xid::text::int8, checkpoint_position FROM \(Self.ownProcessRuntime).projections
                WHERE name = '\(FleetWorker.projection(0))' AND version = 1
                """)
        @Sendable func checkpoint() async throws -> LogPosition {
            // Before the worker has made its schema, its projection is at the start.
            guard let rows = try? await client.query(checkpointQuery).collect(), let row = rows.first else { return .start }
            let (xid, position) = try row.decode((Int64, Int64).self)
            return LogPosition(transactionID: UInt64(xid), globalPosition: position)
        }
        let clock = ContinuousClock()
        // Set up, caught up, and woken by NOTIFY (the notifier here sends one only once it has seen the
        // worker listening): three warm-up appends in a row seen within 20 ms, not at an idle poll.
        var quick = 0
        let deadline = clock.now + .seconds(60)
        while quick < 3 {
            guard clock.now < deadline else { throw ValidationError("the projector process did not follow the log within 60 s") }
            let position = try await store.append([CartEvents.added(cart: 0)], to: "cart-own-warm-up", expectedVersion: .any).lastPosition!
            let appended = clock.now
            while try await checkpoint() < position { try await clock.sleep(for: .milliseconds(0.5)) }
            quick = clock.now - appended < .milliseconds(20) ? quick + 1 : 0
        }
        var results: [(Int, [Duration])] = []
        for rate in rates {
            let total = rate * seconds
            let pending = Committed()
            let indexed = try await withThrowingTaskGroup(of: [(Int, Duration)].self) { group in
                // The poller connects before the first append, as the peer's does: setting up a
                // connection (a server process forked, its caches filled) is not what is measured.
                let (ready, connected) = AsyncStream<Void>.makeStream()
                group.addTask {
                    try await Self.poll(
                        total: total, until: clock.now + .seconds(seconds + 30), pending: pending, checkpoint: checkpointQuery.sql,
                        ready: { connected.finish() })
                }
                for await _ in ready {}
                let start = clock.now
                for i in 0..<total {
                    try await clock.sleep(until: start + .seconds(Double(i) / Double(rate)))
                    group.addTask {
                        let result = try await store.append(
                            [CartEvents.added(cart: i % 500)], to: StreamID("cart-own-\(i % 500)"), expectedVersion: .any)
                        let committed = clock.now
                        pending.add(result.lastPosition!, at: committed, index: i)
                        return []
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            Self.emitSlowest(indexed, rate: rate, label: "own process \(rate)/s")
            let samples = indexed.map(\.1)
            if samples.count < total { emit("  own process \(rate)/s: \(total - samples.count) appends not seen within 30 s") }
            results.append((rate, samples))
        }
        return results
    }
}

extension LiveBenchmark {
    /// The poller, as the peer's: on a thread of its own with a libpq connection, it takes the appends
    /// committed so far, reads the checkpoint, and sleeps 0.5 ms. Returns each append's latency.
    /// Calls `ready` once it has connected and read the checkpoint once (or failed).
    fileprivate static func poll(
        total: Int, until end: ContinuousClock.Instant, pending: Committed, checkpoint sql: String, ready: @escaping @Sendable () -> Void
    ) async throws -> [(Int, Duration)] {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                defer { ready() }
                do {
                    let connection = try LibPQConnection()
                    _ = try connection.firstRow(sql)
                    ready()
                    var waiting: [Committed.Append] = [], latencies: [(Int, Duration)] = []
                    while latencies.count < total && ContinuousClock.now < end {
                        waiting += pending.take()
                        let row = try connection.firstRow(sql)
                        let now = ContinuousClock.now
                        let passed =
                            row.count == 2 ? LogPosition(transactionID: UInt64(row[0]) ?? 0, globalPosition: Int64(row[1]) ?? 0) : .start
                        latencies += waiting.filter { $0.position <= passed }.map { ($0.index, now - $0.at) }
                        waiting.removeAll { $0.position <= passed }
                        usleep(500)
                    }
                    continuation.resume(returning: latencies)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
    }
}

/// Appends that have returned, with the time they did, until the poller takes them.
private final class Committed: Sendable {
    struct Append: Sendable {
        let position: LogPosition
        let at: ContinuousClock.Instant
        /// The append's place in the run (its second: index / rate).
        let index: Int
    }

    private let appends = Mutex<[Append]>([])

    func add(_ position: LogPosition, at instant: ContinuousClock.Instant, index: Int) {
        appends.withLock { $0.append(Append(position: position, at: instant, index: index)) }
    }

    func take() -> [Append] {
        appends.withLock { taken in
            defer { taken = [] }
            return taken
        }
    }
}
