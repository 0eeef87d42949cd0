import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Follows the primary of a replicated PostgreSQL (a pg_auto_failover formation, a Patroni cluster):
/// a listener on the loopback interface that joins every connection made to it to whichever of
/// `hosts` accepts writes now — what libpq does for a URL with several hosts and
/// `target_session_attrs=read-write`, which postgres-nio does not. Point a `PostgresClient` at
/// ``clientConfiguration(_:)`` and run the router as a `Service` beside it.
///
/// Each new connection goes to the primary as last found (looked for again when that was over a
/// second ago, or when it refuses the connection): the first host, in order, whose session is not
/// read-only. Connections already open stay where they are; when the primary fails they close, and
/// the client's reconnections reach the new primary once it is promoted. The bytes are relayed
/// unchanged, so TLS runs end to end between the client and the server.
public final class PrimaryRouter: Service, Sendable {
    /// One server of the cluster.
    public struct Host: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { "\(host):\(port)" }
    }

    /// The servers, in the order they are tried.
    public let hosts: [Host]
    /// The loopback port clients connect to.
    public let port: Int
    private let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
    private let login: Login
    private let logger: Logger
    private let primary = Mutex<(host: Host, found: ContinuousClock.Instant)?>(nil)

    /// How the router logs in to look for the primary.
    private struct Login: Sendable {
        var username: String
        var password: String?
        var database: String?
        var tls: PostgresConnection.Configuration.TLS

        func configuration(_ host: Host) -> PostgresConnection.Configuration {
            var configuration = PostgresConnection.Configuration(
                host: host.host, port: host.port, username: username, password: password, database: database, tls: tls)
            configuration.options.connectTimeout = .seconds(2)
            return configuration
        }
    }

    private init(hosts: [Host], server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>, login: Login, logger: Logger) throws {
        guard let port = server.channel.localAddress?.port else { throw ChannelError.unknownLocalAddress }
        self.hosts = hosts
        self.port = port
        self.server = server
        self.login = login
        self.logger = logger
    }

    /// Listens on 127.0.0.1 (an ephemeral port unless `port` is given); connections are served once
    /// ``run()`` runs.
    /// - Parameters:
    ///   - hosts: The servers, tried in this order.
    ///   - username: The role the router logs in as to look for the primary (clients log in as
    ///     their own roles, relayed unchanged).
    ///   - password: That role's password.
    ///   - database: The database it logs in to.
    ///   - tls: How it connects to look (clients' TLS runs end to end, unchanged).
    ///   - port: The loopback port to listen on; 0 (the default) for an ephemeral one.
    ///   - logger: Where it reports the primary it finds and hosts it cannot use.
    public static func start(
        hosts: [Host], username: String, password: String?, database: String?, tls: PostgresConnection.Configuration.TLS = .disable,
        port: Int = 0, logger: Logger
    ) async throws -> PrimaryRouter {
        precondition(!hosts.isEmpty, "a primary router needs at least one host")
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let router = try PrimaryRouter(
            hosts: hosts, server: server, login: Login(username: username, password: password, database: database, tls: tls), logger: logger)
        logger.info("routing to the primary", metadata: ["kappa.hosts": "\(hosts)", "kappa.port": "\(router.port)"])
        return router
    }

    /// The configuration of a client that reaches the primary through this router.
    public func clientConfiguration(_ configuration: PostgresClient.Configuration) -> PostgresClient.Configuration {
        var routed = PostgresClient.Configuration(
            host: "127.0.0.1", port: port, username: configuration.username, password: configuration.password,
            database: configuration.database, tls: configuration.tls)
        routed.options = configuration.options
        return routed
    }

    /// Serves connections until cancelled or shut down gracefully, then stops listening (and closes
    /// the connections it relays).
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingDiscardingTaskGroup { group in
                try await self.server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await self.relay(connection) }
                    }
                }
            }
        }
    }

    /// Stops listening now (``run()`` then returns).
    public func stop() async {
        try? await server.channel.close()
    }

    /// Relays one client connection to the primary and back until either side closes.
    private func relay(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        do {
            let server = try await connectToPrimary()
            try await client.executeThenClose { fromClient, toClient in
                try await server.executeThenClose { fromServer, toServer in
                    try await withThrowingTaskGroup(of: Void.self) { pair in
                        pair.addTask { for try await bytes in fromClient { try await toServer.write(bytes) } }
                        pair.addTask { for try await bytes in fromServer { try await toClient.write(bytes) } }
                        // Either side ending ends both.
                        try await pair.next()
                        pair.cancelAll()
                    }
                }
            }
        } catch {
            logger.debug("a routed connection ended", metadata: ["error": "\(String(reflecting: error))"])
            try? await client.channel.close()
        }
    }

    /// A connection to the primary as last found, or, when that fails or is over a second old, to the
    /// one found by looking again.
    private func connectToPrimary() async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        if let known = primary.withLock({ $0 }), ContinuousClock.now - known.found < .seconds(1),
            let channel = try? await connect(known.host)
        {
            return channel
        }
        return try await connect(try await findPrimary())
    }

    private func connect(_ host: Host) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .connect(host: host.host, port: host.port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
    }

    /// The first host whose session accepts writes.
    private func findPrimary() async throws -> Host {
        var problems: [String] = []
        for host in hosts {
            do {
                let connection = try await PostgresConnection.connect(configuration: login.configuration(host), id: 0, logger: logger)
                defer { Task { try? await connection.close() } }
                var readOnly = "on"
                for try await value in try await connection.query("SHOW transaction_read_only", logger: logger).decode(String.self) {
                    readOnly = value
                }
                if readOnly == "off" {
                    let previous = primary.withLock { state in
                        defer { state = (host, .now) }
                        return state?.host
                    }
                    if previous != host { logger.notice("found the primary", metadata: ["kappa.primary": "\(host)"]) }
                    return host
                }
                problems.append("\(host): read-only")
            } catch {
                problems.append("\(host): \(String(reflecting: error))")
            }
        }
        logger.warning("no primary among the hosts", metadata: ["kappa.hosts": "\(problems.joined(separator: "; "))"])
        throw PrimaryRouterError(hosts: hosts, problems: problems)
    }
}

/// No host accepted writes: each with why (refused, read-only, …).
public struct PrimaryRouterError: Error, CustomStringConvertible {
    public let hosts: [PrimaryRouter.Host]
    public let problems: [String]
    public var description: String { "no primary among \(hosts): \(problems.joined(separator: "; "))" }
}
