import Foundation
import KappaPostgres
import Logging
import PostgresNIO
import ServiceLifecycle

/// A client of a database URL: of one host as it is; of several
/// (`postgres://u@db1:5432,db2:5432/shop?target_session_attrs=read-write`) through a
/// ``PrimaryRouter`` that joins each connection to the host that accepts writes now, found again
/// after a failover. Run ``services`` (the router first) beside the application's other services.
public struct DatabaseClient: Sendable {
    /// The client; with several hosts it connects to the router on 127.0.0.1.
    public let client: PostgresClient
    /// The router, for a URL of several hosts.
    public let router: PrimaryRouter?

    /// The services to run: the router (when there is one), then the client.
    public var services: [any Service] { (router.map { [$0] } ?? []) + [client] }

    /// - Parameter url: A database URL (see ``DatabaseURL``), or `nil` for `KAPPA_DATABASE_URL`
    ///   or the `PG*` variables.
    /// - Throws: what ``DatabaseURL/configuration(url:environment:)`` and
    ///   ``DatabaseURL/hosts(url:environment:)`` throw; the router's own errors when it cannot listen.
    public static func connect(url: String?, environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger) async throws
        -> DatabaseClient
    {
        let (client, router) = try await PrimaryRouter.client(
            try DatabaseURL.configuration(url: url, environment: environment), routing: try DatabaseURL.routing(url: url, environment: environment),
            logger: logger)
        return DatabaseClient(client: client, router: router)
    }
}
