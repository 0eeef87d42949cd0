import CartDomain
import CartReadModels
import Foundation
import Hummingbird
import Kappa
import KappaPostgres
import Logging
import OpenAPIHummingbird
import PostgresNIO
import ServiceLifecycle

/// Builds the cart service: the HTTP API, the projection runtime (unless a worker runs it) and the
/// connections, as one Hummingbird application whose `run` starts everything. `@main` and the tests
/// both call this.
/// - Parameter onServerRunning: Called with the port once the server listens (useful with port 0).
public func buildApplication(
    configuration: CartServiceConfiguration, logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    let (clients, notifier, store, runtime) = try await components(configuration, logger: logger)
    let api = CartHandler(
        store: store, client: clients.readModels, runtime: runtime, configuration: configuration,
        readModel: try SQLIdentifier(configuration.readModel, role: "read model"), logger: logger)
    let router = Router()
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: JSONRequestMiddleware(maximumBodyBytes: configuration.maximumBodyBytes))
    // The routes, request decoding and response encoding are generated from openapi.yaml.
    // Compact JSON, as clients and logs expect it; times to the millisecond.
    try api.registerHandlers(
        on: router, configuration: .init(dateTranscoder: .iso8601WithFractionalSeconds, jsonEncodingOptions: [.sortedKeys, .withoutEscapingSlashes]),
        middlewares: [OperatorTokenMiddleware(token: configuration.operatorToken)])
    // The store holds two of the log client's connections for the appends while it runs.
    var services: [any Service] = clients.services + [notifier, store]
    if configuration.runProjections { services.append(runtime) }
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kappa-cart"),
        services: services,
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
    // The log's and the runtime's tables exist before the first request is answered (idempotent).
    app.beforeServerStarts {
        try await store.migrate()
        try await runtime.migrate()
        if configuration.runProjections { try await runRecordedVersions(runtime, configuration) }
    }
    return app
}

/// Also runs the read-model versions the database records besides the configured ones: a version a
/// migration started in an earlier run (`m` in the console, `POST /read-model/versions/2/build`) may
/// be the active one now, and a restart must keep it following the log — not serve it frozen.
/// Dropped versions stay stopped.
func runRecordedVersions(_ runtime: ProjectionRuntime, _ configuration: CartServiceConfiguration) async throws {
    let recorded = try await runtime.versions.versions(of: configuration.readModel).filter { $0.lifecycle != .dropped }.map(\.version)
    for projection in allVersions(configuration)
    where recorded.contains(projection.version) && !configuration.readModelVersions.contains(projection.version) {
        try await runtime.start(projection)
    }
}

/// Every read-model version this code holds.
func allVersions(_ configuration: CartServiceConfiguration) -> [any Projection] {
    [CartSummaryV1(name: configuration.readModel), CartSummaryV2(name: configuration.readModel)]
}

/// The projections alone, for a worker process beside services started with `runProjections = false`
/// (`cart-app worker`): the read-model versions of `configuration.readModelVersions` and those the
/// database records (``runRecordedVersions(_:_:)``), following the
/// log until SIGTERM or SIGINT, then shutting down gracefully.
public func buildWorker(configuration: CartServiceConfiguration, logger: Logger) async throws -> ServiceGroup {
    let (clients, notifier, store, runtime) = try await components(configuration, logger: logger)
    return ServiceGroup(
        configuration: .init(
            services: clients.services + [notifier, LogFirst(store: store, runtime: runtime, configuration: configuration)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
}

/// The runtime, once the log's tables exist (a worker may start before any service has created them).
struct LogFirst: Service {
    let store: PostgresEventStore
    let runtime: ProjectionRuntime

    let configuration: CartServiceConfiguration

    func run() async throws {
        try await store.migrate()
        try await runtime.migrate()
        try await runRecordedVersions(runtime, configuration)
        try await runtime.run()
    }
}

/// The log's client, and the read models' (the same one unless configured apart), with the routers
/// of those whose URLs name several hosts.
struct Clients {
    let log: PostgresClient
    let readModels: PostgresClient
    let routers: [PrimaryRouter]
    /// The routers, then each client once, to run as services.
    var services: [any Service] { routers + (log === readModels ? [log] : [log, readModels]) }
}

/// The connections, the log and the projection runtime, as the service and the worker share them.
func components(_ configuration: CartServiceConfiguration, logger: Logger) async throws
    -> (Clients, LogNotifier, PostgresEventStore, ProjectionRuntime)
{
    let (client, logRouter) = try await PrimaryRouter.client(configuration.database, routing: configuration.databaseRouting, logger: logger)
    var (readModelClient, readModelRouter) = (client, PrimaryRouter?.none)
    if let readModels = configuration.readModelDatabase {
        (readModelClient, readModelRouter) = try await PrimaryRouter.client(readModels, routing: configuration.readModelRouting, logger: logger)
    }
    let notifier = try LogNotifier(client: client, schema: configuration.logSchema, logger: logger)
    var storeConfiguration = PostgresEventStore.Configuration(schema: configuration.logSchema)
    storeConfiguration.appendConnectionString = configuration.logConnectionString
    let store = try PostgresEventStore(client: client, configuration: storeConfiguration, notifier: notifier, logger: logger)
    var runtimeConfiguration = ProjectionRuntime.Configuration()
    runtimeConfiguration.schema = configuration.runtimeSchema
    runtimeConfiguration.promoteWhenCaughtUp = configuration.promoteWhenCaughtUp
    runtimeConfiguration.pipelineConnectionString = configuration.readModelConnectionString
    let readModels = allVersions(configuration).filter { configuration.readModelVersions.contains($0.version) }
    let runtime = try ProjectionRuntime(
        log: store, readModels: readModelClient, projections: readModels, notifier: notifier,
        configuration: runtimeConfiguration, logger: logger)
    return (Clients(log: client, readModels: readModelClient, routers: [logRouter, readModelRouter].compactMap { $0 }), notifier, store, runtime)
}
