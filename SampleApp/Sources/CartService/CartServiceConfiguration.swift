import Foundation
import KappaPostgres
import PostgresNIO

/// How the cart service runs. Every value has a documented default.
public struct CartServiceConfiguration: Sendable {
    /// The address to listen on. Default `127.0.0.1` (loopback only).
    public var host = "127.0.0.1"
    /// Default 8080.
    public var port = 8080
    /// The PostgreSQL server of the log, and the role appends run as.
    public var database: PostgresClient.Configuration
    /// The server and role of the read models and the projection runtime, when they are not the
    /// log's: a role granted only the log's reader (its transactions then hold no follower of the log
    /// back), on the same server or another. Default `nil`: ``database``.
    public var readModelDatabase: PostgresClient.Configuration?
    /// The log's servers when its URL names several (`postgres://app@db1,db2/shop`): the service
    /// reaches the one that accepts writes through a `PrimaryRouter`, found again after a failover.
    /// Default `nil`: ``database``'s host.
    public var databaseRouting: PrimaryRouter.Routing?
    /// The same for ``readModelDatabase``. Default `nil`.
    public var readModelRouting: PrimaryRouter.Routing?
    /// The read models' database for libpq (a connection string or URL), so that each live batch of
    /// the read model is one round trip whatever its statements (see the runtime's
    /// `pipelineConnectionString`). Default `nil`: statement by statement.
    public var readModelConnectionString: String?
    /// The log's database for libpq (a connection string or URL), so that appends go through
    /// held libpq connections (see the event store's `appendConnectionString`). Default
    /// `nil`: every append through ``database``'s client.
    public var logConnectionString: String?
    /// Schema of the event log. Default `kappa`.
    public var logSchema = "kappa"
    /// Schema of the projection runtime's tables. Default `kappa_projections`.
    public var runtimeSchema = "kappa_projections"
    /// The read model's name: readers query its stable names, `<readModel>.carts`. Default `cart_summary`.
    public var readModel = "cart_summary"
    /// The read-model versions this service runs (builds, follows). Default `[1]`. Versions the database
    /// records (started by an earlier migration, not dropped) run too, so a restart after a migration
    /// keeps the active version following the log.
    public var readModelVersions: Set<Int> = [1]
    /// Whether a higher read-model version is promoted as soon as it has caught up. Default `false`.
    public var promoteWhenCaughtUp = false
    /// Whether the projection runtime runs in this process. Default `true`; `false` when a separate
    /// worker process runs it.
    public var runProjections = true
    /// The largest request body accepted, in bytes; larger ones get 413. Default 16 KiB.
    public var maximumBodyBytes = 16 * 1024
    /// How long a read waits for its own write (`?after=`) before answering 504. Default 5 s.
    public var readYourWritesTimeout: Duration = .seconds(5)
    /// What the operator requests (read-model build, compare, promote, rollback) send as
    /// `Authorization: Bearer <token>`; others get 401. Default: a random token (64 hex digits) made
    /// with the configuration, so those requests are closed until the token is handed out. An empty
    /// token closes them for good.
    public var operatorToken = CartServiceConfiguration.randomToken()

    public init(database: PostgresClient.Configuration) {
        self.database = database
    }
}

extension CartServiceConfiguration {
    /// 32 bytes from the system's secure random generator, as 64 lower-case hex digits.
    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in
            let byte = UInt8.random(in: .min ... .max, using: &generator)
            return String(byte >> 4, radix: 16) + String(byte & 0x0F, radix: 16)
        }.joined()
    }
}
