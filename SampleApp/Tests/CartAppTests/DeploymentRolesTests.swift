import CartService
import Foundation
import Hummingbird
import HummingbirdTesting
import KappaCLI
import KappaTesting
import Logging
import PostgresNIO
import Testing

/// The deployment docker-compose.yml describes, on a throw-away cluster of its own (the roles are
/// the cluster's): SampleApp/postgres-roles.sql as PostgreSQL's first start runs it, `cart-app
/// migrate` as the owner, then the service as cart_app with its projections as cart_projector, with
/// the URLs of the compose file.
@Suite("Sample app: the deployment's roles", .serialized)
struct DeploymentRolesTests {
    struct Accepted: Decodable {
        var cartId: String
        var position: String?
    }
    struct CartView: Decodable { var items: Int }

    @Test func theServiceRunsAsRolesThatDoNotOwnTheLog() async throws {
        let compose = try DeploymentFilesTests.compose()
        let environment = try #require(compose.services["cart"]?.environment)
        let roles = DeploymentFilesTests.root.appending(path: "SampleApp/postgres-roles.sql").path
        try await ThrowAwayCluster.with { cluster in
            try await pgTool(try postgresProgram("createdb"), ["kappa"], environment: cluster.environment)
            try await pgTool(
                try postgresProgram("psql"), ["--quiet", "-v", "ON_ERROR_STOP=1", "--dbname", "kappa", "--file", roles], environment: cluster.environment)
            // The compose file's URLs, pointed at this cluster.
            func localURL(_ name: String) throws -> String {
                try #require(environment[name]).replacingOccurrences(of: "@postgres:5432/", with: "@127.0.0.1:\(cluster.port)/") + "?sslmode=disable"
            }
            func local(_ name: String) throws -> PostgresClient.Configuration {
                try DatabaseURL.configuration(url: try localURL(name), environment: [:])
            }
            let (writer, projector) = (try local("KAPPA_DATABASE_URL"), try local("KAPPA_READ_MODEL_DATABASE_URL"))
            let migrated = try await pgTool(
                try cartApp(), ["migrate"],
                environment: [
                    "KAPPA_DATABASE_URL": "postgres://postgres@127.0.0.1:\(cluster.port)/kappa", "LOG_LEVEL": "error",
                ])
            #expect(migrated.contains("applied 0001_event_log.sql"), "\(migrated)")

            let configuration = {
                var configuration = CartServiceConfiguration(database: writer)
                configuration.readModelDatabase = projector
                // Live batches through libpq, logged in as the projector as well.
                configuration.readModelConnectionString = try? localURL("KAPPA_READ_MODEL_DATABASE_URL")
                configuration.readYourWritesTimeout = .seconds(30)
                return configuration
            }()
            let app = try await buildApplication(configuration: configuration, logger: Logger(label: "cart.test"))
            try await app.test(.router) { router in
                let http = router.checked
                let opened = try await http.execute(uri: "/carts", method: .post, body: ByteBuffer(string: #"{"customer": "ada"}"#))
                let cart = try JSONDecoder().decode(Accepted.self, from: Data(opened.body.readableBytesView))
                let added = try await http.execute(
                    uri: "/carts/\(cart.cartId)/items", method: .post, body: ByteBuffer(string: #"{"sku": "KETTLE", "quantity": 1}"#))
                let position = try #require(try JSONDecoder().decode(Accepted.self, from: Data(added.body.readableBytesView)).position)
                let read = try await http.execute(uri: "/carts/\(cart.cartId)?after=\(position)", method: .get)
                #expect(read.status == .ok, "\(String(buffer: read.body))")
                #expect(try JSONDecoder().decode(CartView.self, from: Data(read.body.readableBytesView)).items == 1)
            }
            // Neither role may change the log, logged in as it; the read models are the projector's.
            for (login, statement) in [
                (writer, "UPDATE kappa.events SET payload = '{}'"), (projector, "DELETE FROM kappa.events"),
                (writer, "ALTER TABLE kappa.events DISABLE TRIGGER ALL"), (projector, "TRUNCATE kappa.events"),
            ] {
                let refused = await #expect(throws: PSQLError.self) {
                    try await TestDatabase.withClient(configuration: login) { client in
                        try await client.query(PostgresQuery(unsafeSQL: statement), logger: Logger(label: "cart.test"))
                    }
                }
                #expect(refused?.serverInfo?[.sqlState] == "42501", "\(login.username): \(statement)")
            }
            try await TestDatabase.withClient(configuration: cluster.configuration(database: "kappa")) { admin in
                let owner = try await admin.query("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = \(configuration.readModel)")
                    .collect().first?.decode(String.self)
                #expect(owner == "cart_projector")
            }
        }
    }
}
