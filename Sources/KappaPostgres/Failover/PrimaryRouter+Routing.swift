import Logging
import PostgresNIO

extension PrimaryRouter {
    /// The servers of one database and how the router looks at them: what a connection URL of several
    /// hosts says (`postgres://app@db1:5432,db2:5432/shop?target_session_attrs=read-write`).
    public struct Routing: Sendable {
        /// The servers, in the order they are tried.
        public var hosts: [Host]
        /// How the router connects to look at each (the clients' own TLS runs end to end, unchanged).
        public var tls: PostgresConnection.Configuration.TLS

        public init(hosts: [Host], tls: PostgresConnection.Configuration.TLS = .disable) {
            self.hosts = hosts
            self.tls = tls
        }
    }

    /// Starts a router to `routing`'s hosts, logging in as `configuration` says, and returns it with
    /// the configuration of a client that reaches the primary through it (its TLS verified against
    /// the first host's name unless `configuration` names a server of its own). Run the router as a
    /// `Service` before the client.
    public static func start(
        _ routing: Routing, for configuration: PostgresClient.Configuration, logger: Logger
    ) async throws -> (router: PrimaryRouter, client: PostgresClient.Configuration) {
        let router = try await start(
            hosts: routing.hosts, username: configuration.username, password: configuration.password, database: configuration.database,
            tls: routing.tls, logger: logger)
        var configuration = configuration
        configuration.options.tlsServerName = configuration.options.tlsServerName ?? routing.hosts.first?.host
        return (router, router.clientConfiguration(configuration))
    }

    /// A client of `configuration`; with `routing`, through a router started for it (run the router
    /// as a `Service` before the client).
    public static func client(
        _ configuration: PostgresClient.Configuration, routing: Routing?, logger: Logger
    ) async throws -> (client: PostgresClient, router: PrimaryRouter?) {
        guard let routing else { return (PostgresClient(configuration: configuration, backgroundLogger: logger), nil) }
        let (router, routed) = try await start(routing, for: configuration, logger: logger)
        return (PostgresClient(configuration: routed, backgroundLogger: logger), router)
    }
}
