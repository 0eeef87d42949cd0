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
            at a time, by lease, and they share the versions out between them (about as many each), \
            handing some over when a worker joins; the others take over a dead worker's within about \
            twice the lease time. SIGTERM or SIGINT finishes the batch in flight and releases the leases.
            """)

    @OptionGroup var service: ServiceOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = try service.configuration(environment)
        var logger = Logger(label: "kappa.cart.worker")
        logger.logLevel = environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        try await buildWorker(configuration: configuration, logger: logger).run()
    }
}
