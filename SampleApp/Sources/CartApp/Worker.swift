import ArgumentParser
import CartService
import Foundation
import KappaCLI
import Logging

/// `cart-app worker`: the projections alone, beside services started with `serve --no-projections`.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the read-model projections without the HTTP API (beside `serve --no-projections`).",
        discussion: """
            Several workers (and services) may run at once: each read-model version is run by one of them \
            at a time, by lease; another takes over within the lease time when one dies. SIGTERM or SIGINT \
            finishes the batch in flight and releases the leases.
            """)

    @Option(help: "PostgreSQL URL (env KAPPA_DATABASE_URL; default: the PG* variables, else postgres@localhost:5432/postgres).")
    var databaseURL: String?
    @Option(help: "The read model's name (env CART_READ_MODEL; default cart_summary).") var readModel: String?
    @Option(parsing: .upToNextOption, help: "Read-model versions to run (env CART_READ_MODEL_VERSIONS, e.g. 1,2; default 1).")
    var readModelVersions: [Int] = []
    @Flag(help: "Promote a higher read-model version as soon as it has caught up.") var promoteWhenCaughtUp = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration = CartServiceConfiguration(database: try DatabaseURL.configuration(url: databaseURL))
        configuration.readModel = readModel ?? environment["CART_READ_MODEL"] ?? configuration.readModel
        configuration.logSchema = environment["KAPPA_LOG_SCHEMA"] ?? configuration.logSchema
        configuration.runtimeSchema = environment["KAPPA_RUNTIME_SCHEMA"] ?? configuration.runtimeSchema
        let versions = readModelVersions.isEmpty
            ? (environment["CART_READ_MODEL_VERSIONS"]?.split(separator: ",").compactMap { Int($0) } ?? []) : readModelVersions
        if !versions.isEmpty { configuration.readModelVersions = Set(versions) }
        configuration.promoteWhenCaughtUp = promoteWhenCaughtUp
        var logger = Logger(label: "kappa.cart.worker")
        logger.logLevel = environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        try await buildWorker(configuration: configuration, logger: logger).run()
    }
}
