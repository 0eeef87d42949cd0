import ArgumentParser
import CartReadModels
import CartService
import Foundation
import KappaCLI
import KappaPostgres
import Logging

/// The sample shop's executable: `serve` runs the HTTP service (and the projections), `projections`
/// operates the read-model versions (status, rebuild, compare, promote, rollback, drop), `log verify`
/// checks the event log's hash chains.
@main
struct CartApp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cart-app",
        abstract: "Kappa's sample shop: a cart service on an event log, with read models migrated by replay.",
        subcommands: [
            Serve.self, ConsoleCommand.self, Worker.self, MigrateCommand.self, Seed.self, LoadCommand.self, ProjectionsCommand<CartHost>.self, LogCommand.self,
        ],
        defaultSubcommand: Serve.self)
}

/// The read-model versions whose code this executable holds.
enum CartHost: ProjectionCommandHost {
    static func projections() -> [any Projection] { [CartSummaryV1(), CartSummaryV2()] }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP JSON API, with the projections following the log in this process.")

    @Option(help: "Address to listen on (env CART_HOST; default 127.0.0.1).") var host: String?
    @Option(help: "Port (env CART_PORT; default 8080).") var port: Int?
    @OptionGroup var service: ServiceOptions
    @Flag(help: "Do not run the projections here (a separate worker runs them).") var noProjections = false
    @Option(
        help:
            "The token operator requests (read-model build, compare, promote, rollback) send as `Authorization: Bearer <token>` (env CART_OPERATOR_TOKEN; default: a random one, written to --operator-token-file)."
    )
    var operatorToken: String?
    @Option(help: "Where a random operator token is written for the console (env CART_OPERATOR_TOKEN_FILE; default $TMPDIR/cart-operator-token).")
    var operatorTokenFile: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration = try service.configuration(environment)
        configuration.host = host ?? environment["CART_HOST"] ?? configuration.host
        configuration.port = port ?? environment["CART_PORT"].flatMap(Int.init) ?? configuration.port
        configuration.runProjections = !noProjections
        var logger = Logger(label: "kappa.cart")
        logger.logLevel = environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        if let token = operatorToken ?? environment["CART_OPERATOR_TOKEN"], !token.isEmpty {
            configuration.operatorToken = token
        } else {
            // The configuration's random token, where `cart-app console --url` finds it.
            let path = OperatorTokenFile.path(operatorTokenFile, environment)
            try OperatorTokenFile.write(configuration.operatorToken, to: path)
            logger.notice("operator token written to \(path)")
        }
        let app = try await buildApplication(configuration: configuration, logger: logger)
        try await app.runService()
    }
}

/// What `serve` and `worker` share: the database, the read model and its versions, from flags and
/// environment variables.
struct ServiceOptions: ParsableArguments {
    @Option(
        help:
            "PostgreSQL URL of the log, as the role appends run as (env KAPPA_DATABASE_URL; default: the PG* variables, else postgres@localhost:5432/postgres)."
    )
    var databaseURL: String?
    @Option(
        help:
            "PostgreSQL URL of the read models and the projection runtime, as a role granted only the log's reader (env KAPPA_READ_MODEL_DATABASE_URL; default: the log's URL)."
    )
    var readModelDatabaseURL: String?
    @Option(help: "The read model's name (env CART_READ_MODEL; default cart_summary).") var readModel: String?
    @Option(
        parsing: .upToNextOption,
        help: "Read-model versions to run (env CART_READ_MODEL_VERSIONS, e.g. 1,2; default 1). Versions an earlier migration started run too, unless dropped.")
    var readModelVersions: [Int] = []
    @Flag(help: "Promote a higher read-model version as soon as it has caught up.") var promoteWhenCaughtUp = false
    @Option(
        help:
            "on: appends, and each live batch of the read model in one round trip whatever its statements, go through libpq; off: both through postgres-nio, statement by statement (env KAPPA_PIPELINE; default on)."
    )
    var pipeline: Pipeline?

    enum Pipeline: String, ExpressibleByArgument, CaseIterable {
        case on, off
    }

    /// Also reads CART_READ_MODEL, KAPPA_LOG_SCHEMA and KAPPA_RUNTIME_SCHEMA.
    func configuration(_ environment: [String: String]) throws -> CartServiceConfiguration {
        var configuration = CartServiceConfiguration(database: try DatabaseURL.configuration(url: databaseURL, environment: environment))
        configuration.databaseRouting = try DatabaseURL.routing(url: databaseURL, environment: environment)
        configuration.logConnectionString = try DatabaseURL.connectionString(url: databaseURL, environment: environment)
        configuration.readModelConnectionString = configuration.logConnectionString
        if let url = readModelDatabaseURL ?? environment["KAPPA_READ_MODEL_DATABASE_URL"], !url.isEmpty {
            configuration.readModelDatabase = try DatabaseURL.configuration(url: url, environment: environment)
            configuration.readModelRouting = try DatabaseURL.routing(url: url, environment: environment)
            configuration.readModelConnectionString = url
        }
        let fromEnvironment = try environment["KAPPA_PIPELINE"].map { value in
            guard let choice = Pipeline(rawValue: value) else { throw ValidationError("KAPPA_PIPELINE must be on or off, not '\(value)'") }
            return choice
        }
        if (pipeline ?? fromEnvironment ?? .on) == .off {
            configuration.readModelConnectionString = nil
            configuration.logConnectionString = nil
        }
        configuration.readModel = readModel ?? environment["CART_READ_MODEL"] ?? configuration.readModel
        configuration.logSchema = environment["KAPPA_LOG_SCHEMA"] ?? configuration.logSchema
        configuration.runtimeSchema = environment["KAPPA_RUNTIME_SCHEMA"] ?? configuration.runtimeSchema
        let versions =
            readModelVersions.isEmpty
            ? (environment["CART_READ_MODEL_VERSIONS"]?.split(separator: ",").compactMap { Int($0) } ?? []) : readModelVersions
        if !versions.isEmpty { configuration.readModelVersions = Set(versions) }
        configuration.promoteWhenCaughtUp = promoteWhenCaughtUp
        return configuration
    }
}
