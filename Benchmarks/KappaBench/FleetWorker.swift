import ArgumentParser
import Foundation
import KappaFixtures
import KappaPostgres
import ServiceLifecycle

/// One process of ``FleetBenchmark``'s fleet: a runtime with the fleet's versions, until SIGTERM.
struct FleetWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-worker", abstract: "One projector process of the fleet benchmark (started by `fleet`).", shouldDisplay: false)

    static let log = "kappa_fleet"
    static let runtime = "kappa_fleet_runtime"
    static func projection(_ index: Int) -> String { "fleet_\(index)" }

    @Option var versions = 6
    @Option var connections = 4
    @Option(help: "The log's schema.") var log = FleetWorker.log
    @Option(help: "The runtime's schema.") var runtimeSchema = FleetWorker.runtime
    @Flag(help: "Run the store with libpq connections (appendConnectionString): the runners' page reads go through them.")
    var libpqReads = false

    /// Starts this program as a worker, with this process's environment (the PG* variables).
    static func spawn(versions: Int, connections: Int, log: String = Self.log, runtime: String = Self.runtime, libpqReads: Bool = false) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments =
            [
                "fleet-worker", "--versions", "\(versions)", "--connections", "\(connections)", "--log", log, "--runtime-schema", runtime,
            ] + (libpqReads ? ["--libpq-reads"] : [])
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    func run() async throws {
        // A worker whose benchmark died (killed, or a crash) would follow the log until killed by
        // hand: it exits once it has been handed to another parent.
        let parent = getppid()
        Thread.detachNewThread {
            while getppid() == parent { Thread.sleep(forTimeInterval: 0.5) }
            Foundation.exit(1)
        }
        try await BenchDatabase.withClient(connections: connections, name: "kappa-bench runtime") { client in
            let notifier = try LogNotifier(client: client, schema: log, logger: quietLogger)
            var storeConfiguration = PostgresEventStore.Configuration(schema: log)
            if libpqReads { storeConfiguration.appendConnectionString = BenchDatabase.connectionString }
            let store = try PostgresEventStore(client: client, configuration: storeConfiguration, notifier: notifier, logger: quietLogger)
            var configuration = ProjectionRuntime.Configuration()
            configuration.schema = runtimeSchema
            configuration.pipelineConnectionString = BenchDatabase.connectionString
            // Through live batches, as a fleet following a busy log does; a lease long enough to outlast
            // the SIGSTOP while the benchmark writes the events.
            configuration.rebuildThreshold = .max
            configuration.leaseDuration = .seconds(30)
            let runtime = try ProjectionRuntime(
                log: store, readModels: client, projections: (0..<versions).map { CartLinesProjection(name: Self.projection($0)) },
                notifier: notifier, configuration: configuration, logger: quietLogger)
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: notifier), .init(service: runtime)] + (libpqReads ? [.init(service: store)] : []),
                    gracefulShutdownSignals: [.sigterm], logger: quietLogger))
            try await group.run()
        }
    }
}
