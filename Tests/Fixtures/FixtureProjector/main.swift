import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import Logging
import PostgresNIO
import ServiceLifecycle

// A projector process for the crash and lease tests: runs CartSummaryProjection until SIGTERM/SIGINT
// (graceful) or SIGKILL. Connects with the PG* variables.
//   kappa-fixture-projector LOG_SCHEMA RUNTIME_SCHEMA OWNER BATCH_SIZE LEASE_MS DELAY_MS
let arguments = CommandLine.arguments
guard arguments.count == 7, let batchSize = Int(arguments[4]), let leaseMS = Int(arguments[5]), let delayMS = Int(arguments[6]) else {
    FileHandle.standardError.write(Data("usage: kappa-fixture-projector LOG_SCHEMA RUNTIME_SCHEMA OWNER BATCH_SIZE LEASE_MS DELAY_MS\n".utf8))
    exit(64)
}
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}
let logger = Logger(label: "kappa.fixture")
let env = ProcessInfo.processInfo.environment
let client = PostgresClient(configuration: .init(
    host: env["PGHOST"].flatMap { $0.hasPrefix("/") ? nil : $0 } ?? "localhost", port: env["PGPORT"].flatMap(Int.init) ?? 5432,
    username: env["PGUSER"] ?? "postgres", password: env["PGPASSWORD"], database: env["PGDATABASE"] ?? "postgres", tls: .disable))
let store = try PostgresEventStore(client: client, configuration: .init(schema: arguments[1]), logger: logger)
var configuration = ProjectionRuntime.Configuration()
configuration.schema = arguments[2]
configuration.owner = arguments[3]
configuration.batchSize = batchSize
configuration.leaseDuration = .milliseconds(leaseMS)
configuration.idlePollInterval = .milliseconds(50)
let runtime = try ProjectionRuntime(
    log: store, readModels: client,
    projections: [CartSummaryProjection(writer: arguments[3], delayPerBatch: .milliseconds(delayMS))],
    configuration: configuration, logger: logger)
let group = ServiceGroup(configuration: .init(
    services: [.init(service: client), .init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup)],
    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
try await group.run()
