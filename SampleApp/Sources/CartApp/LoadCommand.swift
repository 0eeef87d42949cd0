import ArgumentParser
import AsyncHTTPClient
import CartService
import Foundation
import KappaCLI
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// `cart-app load`: commands per second and latency through the HTTP API, with the projections
/// following live, beside a baseline on the same service: `GET /health` (one `SELECT 1`).
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Benchmark: commands/s and p99 latency through the HTTP API, projections following live.",
        discussion: """
            Starts the service in this process on a free loopback port (against --database-url), then, from \
            --clients concurrent keep-alive connections: (1) the baseline, GET /health, for --seconds; (2) \
            shoppers that open a cart, add two items and check out (4 commands), then read the cart back \
            with ?after= (read your own write through the projection), for --seconds. Build it in release \
            mode; scripts/bench load runs it against a throw-away server with fsync on.
            """)

    @Option(help: "Concurrent clients.") var clients = 32
    @Option(help: "Seconds per phase.") var seconds = 10
    @Option(help: "PostgreSQL URL (env KAPPA_DATABASE_URL; default: the PG* variables, else postgres@localhost:5432/postgres).")
    var databaseURL: String?
    @Option(help: "Schema of the event log for this run.") var logSchema = "kappa_load"

    func validate() throws {
        guard clients >= 1, seconds >= 1 else { throw ValidationError("--clients and --seconds must be at least 1") }
    }

    func run() async throws {
        var logger = Logger(label: "kappa.cart.load")
        logger.logLevel = .critical // the figures only
        var configuration = CartServiceConfiguration(database: try DatabaseURL.configuration(url: databaseURL))
        configuration.readModelConnectionString = try DatabaseURL.connectionString(url: databaseURL)
        configuration.logConnectionString = configuration.readModelConnectionString
        configuration.port = 0
        configuration.logSchema = logSchema
        configuration.runtimeSchema = "\(logSchema)_rt"
        configuration.readModel = "\(logSchema)_carts"
        configuration.database.options.maximumConnections = max(20, clients + 4)
        let settings = try await Self.serverSettings(configuration.database, logger: logger)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = try await buildApplication(configuration: configuration, logger: logger) { portContinuation.yield($0) }
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = clients
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        defer { _ = http.shutdown() }
        let (clients, duration) = (self.clients, Duration.seconds(seconds))
        // Stopped gracefully at the end, so the projection runtime gives its leases back: a run that
        // started within a lease's time of one that was cancelled waited for the lease to expire.
        var group = ServiceGroupConfiguration(services: [app], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(30) // then cancelled: a batch that hangs does not keep the command
        let service = ServiceGroup(configuration: group)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { portContinuation.finish() }
                try await service.run()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                try await group.next()
                return
            }
            // A run that fails stops the service gracefully too, so its lease is given back all the same.
            var failure: (any Error)?
            do {
                try await Self.measure(port: port, http: http, clients: clients, duration: duration, settings: settings)
            } catch {
                failure = error
            }
            await service.triggerGracefulShutdown()
            try await group.waitForAll()
            if let failure { throw failure }
        }
    }

    /// The run itself against the service on `port`: the baseline, then the shoppers with the lag sampler.
    static func measure(port: Int, http: HTTPClient, clients: Int, duration: Duration, settings: String) async throws {
        let base = "http://127.0.0.1:\(port)"
        print("kappa-cart load: \(clients) clients, \(Int(Self.seconds(duration))) s per phase, service on \(base) (release build: \(Self.isRelease))")
        print("server: \(settings)")
        let shopper = Shopper(http: http, base: base)
        try await Self.warmUp(shopper)
        let health = try await Self.phase(clients: clients, duration: duration) { _ in
            [try await shopper.timed("GET", "/health")]
        }
        print(Self.line("baseline  GET /health (SELECT 1)", health, unit: "requests"))
        let lag = LagSampler(http: http, base: base)
        let shopping = try await withThrowingTaskGroup(of: [String: [Duration]].self) { inner in
            inner.addTask {
                try await lag.run(for: duration + .seconds(1))
                return [:]
            }
            inner.addTask {
                try await Self.phase(clients: clients, duration: duration) { _ in try await shopper.shop() }
            }
            var merged: [String: [Duration]] = [:]
            for try await part in inner { merged.merge(part) { $0 + $1 } }
            return merged
        }
        let elapsed = Self.seconds(duration)
        print(Self.line("commands  open, add ×2, check out", shopping["command", default: []], unit: "commands", seconds: elapsed))
        print(Self.line("reads     GET /carts/{id}?after=", shopping["read", default: []], unit: "reads", seconds: elapsed))
        print("projection lag during the run: at most \(lag.maximum) events behind the log")
    }

    /// One shopper's round before anything is timed, so the read model exists; tried again for up to
    /// 30 s while its read times out: the projection's lease may still be held by a process that
    /// ended without giving it back (killed), until the lease expires (10 s by default).
    static func warmUp(_ shopper: Shopper) async throws {
        let end = ContinuousClock.now + .seconds(30)
        while true {
            do {
                _ = try await shopper.shop()
                return
            } catch let error as Shopper.Failed where error.status == 504 && ContinuousClock.now < end {
                continue
            }
        }
    }

    static var isRelease: Bool {
        #if DEBUG
            false
        #else
            true
        #endif
    }

    /// Runs `clients` loops of `body` for `duration`; every latency `body` returns is kept, by kind.
    static func phase(clients: Int, duration: Duration, _ body: @escaping @Sendable (Int) async throws -> [(String, Duration)])
        async throws -> [String: [Duration]]
    {
        let end = ContinuousClock.now + duration
        return try await withThrowingTaskGroup(of: [String: [Duration]].self) { group in
            for client in 0..<clients {
                group.addTask {
                    var seen: [String: [Duration]] = [:]
                    while ContinuousClock.now < end {
                        for (kind, latency) in try await body(client) { seen[kind, default: []].append(latency) }
                    }
                    return seen
                }
            }
            var merged: [String: [Duration]] = [:]
            for try await part in group { merged.merge(part) { $0 + $1 } }
            merged["__elapsed"] = [duration]
            return merged
        }
    }

    static func line(_ label: String, _ phase: [String: [Duration]], unit: String) -> String {
        line(label, phase.first { $0.key != "__elapsed" }?.value ?? [], unit: unit, seconds: seconds(phase["__elapsed"]?.first ?? .seconds(1)))
    }

    static func line(_ label: String, _ latencies: [Duration], unit: String, seconds: Double? = nil) -> String {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            return String(format: "%.2f ms", Self.seconds(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) * 1000)
        }
        let rate = seconds.map { String(format: "%8.0f", Double(sorted.count) / $0) + " \(unit)/s" } ?? "\(sorted.count) \(unit)"
        return "\(label.padding(toLength: 36, withPad: " ", startingAt: 0)) \(rate)  p50 \(percentile(0.5))  p99 \(percentile(0.99))  max \(percentile(1))"
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func serverSettings(_ configuration: PostgresClient.Configuration, logger: Logger) async throws -> String {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            var parts: [String] = []
            for name in ["server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections"] {
                for try await value in try await client.query("SELECT current_setting(\(name))", logger: logger).decode(String.self) {
                    parts.append("\(name)=\(value)")
                }
            }
            return parts.joined(separator: " ")
        }
    }
}
