import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

// A projector process for the crash and lease tests. Connects with the PG* variables; with
// KAPPA_FIXTURE_READ_MODEL_PORT, the read models and the runtime's tables are on another server on
// 127.0.0.1 at that port (user postgres, database postgres, trust), and the log stays on the first.
//   kappa-fixture-projector LOG_SCHEMA RUNTIME_SCHEMA OWNER BATCH_SIZE LEASE_MS DELAY_MS [MODE [NAME]]
// MODE `run` (default): runs CartSummaryProjection until SIGTERM/SIGINT (graceful) or SIGKILL.
// MODE `rebuild-v2`: rebuilds CartSummaryV2Projection NAME v2 in bulk (2 workers, BATCH_SIZE per batch,
//   resuming an interrupted rebuild), prints `rebuilt events_this_run=N events_total=M`, exits.
// MODE `switch-loop`: promotes v2 and rolls back to v1 of NAME, over and over, printing `switched N`.
// MODE `run-v2`: runs CartSummaryV2Projection NAME v2 (1 rebuild worker per process, 4 partitions, so
//   several processes share a rebuild) until SIGTERM/SIGINT or SIGKILL.
// MODE `fleet`: runs nine CartSummaryProjections, NAME_0 … NAME_8, until SIGTERM/SIGINT or SIGKILL, so
//   that several processes share them (ProjectionRuntime.Configuration.balancesLeases).
let arguments = CommandLine.arguments
guard (7...9).contains(arguments.count), let batchSize = Int(arguments[4]), let leaseMS = Int(arguments[5]), let delayMS = Int(arguments[6]) else {
    FileHandle.standardError.write(Data("usage: kappa-fixture-projector LOG_SCHEMA RUNTIME_SCHEMA OWNER BATCH_SIZE LEASE_MS DELAY_MS [MODE [NAME]]\n".utf8))
    exit(64)
}
let mode = arguments.count > 7 ? arguments[7] : "run"
let name = arguments.count > 8 ? arguments[8] : "cart_summary"
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}
let logger = Logger(label: "kappa.fixture")
let env = ProcessInfo.processInfo.environment
let client = PostgresClient(
    configuration: .init(
        host: env["PGHOST"].flatMap { $0.hasPrefix("/") ? nil : $0 } ?? "localhost", port: env["PGPORT"].flatMap(Int.init) ?? 5432,
        username: env["PGUSER"] ?? "postgres", password: env["PGPASSWORD"], database: env["PGDATABASE"] ?? "postgres", tls: .disable))
let readModels =
    env["KAPPA_FIXTURE_READ_MODEL_PORT"].flatMap(Int.init).map {
        PostgresClient(configuration: .init(host: "127.0.0.1", port: $0, username: "postgres", password: nil, database: "postgres", tls: .disable))
    } ?? client
let clients: [PostgresClient] = readModels === client ? [client] : [client, readModels]
let store = try PostgresEventStore(client: client, configuration: .init(schema: arguments[1]), logger: logger)
var configuration = ProjectionRuntime.Configuration()
configuration.schema = arguments[2]
configuration.owner = arguments[3]
// Live batches in one round trip through libpq, to the read models' server (the PG* variables name the log's).
configuration.pipelineConnectionString =
    env["KAPPA_FIXTURE_READ_MODEL_PORT"].map { "host=127.0.0.1 port=\($0) user=postgres dbname=postgres sslmode=disable" } ?? ""
configuration.batchSize = batchSize
configuration.leaseDuration = .milliseconds(leaseMS)
configuration.idlePollInterval = .milliseconds(50)
if !["run", "run-v2", "fleet"].contains(mode) {
    configuration.rebuildWorkers = 2
    configuration.rebuildBatchSize = batchSize
    configuration.rebuildThreshold = 1
    let versions = try ProjectionVersions(
        log: store, readModels: readModels,
        projections: [CartSummaryProjection(name: name), CartSummaryV2Projection(name: name, writer: arguments[3], delayPerBatch: .milliseconds(delayMS))],
        configuration: configuration, logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for client in clients { group.addTask { await client.run() } }
        if mode == "rebuild-v2" {
            let last = Locked<RebuildProgress?>(nil)
            while true {
                do {
                    try await versions.rebuild(name, version: 2, fromScratch: false) { progress in last.set(progress) }
                    break
                } catch let error as ProjectionError where error.code == .rebuildInProgress {
                    try await Task.sleep(for: .milliseconds(100)) // the killed process's lease has not expired yet
                }
            }
            let progress = last.get()
            print("rebuilt events_this_run=\(progress?.eventsThisRun ?? 0) events_total=\(progress?.eventsTotal ?? 0)")
        } else {
            for n in 1... {
                if try await versions.activeVersion(of: name) == 2 {
                    try await versions.rollback(name)
                } else {
                    try await versions.promote(name, version: 2)
                }
                print("switched \(n)")
            }
        }
        group.cancelAll()
    }
    exit(0)
}

if mode == "run-v2" {
    configuration.rebuildWorkers = 1
    configuration.rebuildPartitions = 4
    configuration.rebuildBatchSize = batchSize
    configuration.rebuildThreshold = 1
}
let runtime = try ProjectionRuntime(
    log: store, readModels: readModels,
    projections: mode == "fleet"
        ? (0..<9).map { CartSummaryProjection(name: "\(name)_\($0)", writer: arguments[3], delayPerBatch: .milliseconds(delayMS)) }
        : [
            mode == "run-v2"
                ? CartSummaryV2Projection(name: name, writer: arguments[3], delayPerBatch: .milliseconds(delayMS))
                : CartSummaryProjection(writer: arguments[3], delayPerBatch: .milliseconds(delayMS))
        ],
    configuration: configuration, logger: logger)
let group = ServiceGroup(
    configuration: .init(
        services: clients.map { .init(service: $0) } + [.init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup)],
        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
try await group.run()

/// The last value set, shared with a progress callback.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func set(_ new: Value) { value.withLock { $0 = new } }
    func get() -> Value { value.withLock { $0 } }
}
