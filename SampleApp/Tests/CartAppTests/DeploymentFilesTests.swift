import CartService
import Foundation
import KappaCLI
import KappaTesting
import Testing
import Yams

/// docker-compose.yml and the Dockerfile cannot run here (no Docker engine): they are parsed, and
/// their settings checked against the code's.
@Suite("Sample app: docker-compose.yml and the Dockerfile")
struct DeploymentFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    struct Compose: Decodable {
        struct Service: Decodable {
            struct Build: Decodable {
                var context: String
                var dockerfile: String
            }
            struct Dependency: Decodable { var condition: String }
            var image: String?
            var build: Build?
            var command: [String]?
            var environment: [String: String]?
            var ports: [String]?
            var depends_on: [String: Dependency]?
            var volumes: [String]?
        }
        var services: [String: Service]
    }

    /// The file, parsed by Yams.
    static func compose() throws -> Compose {
        try YAMLDecoder().decode(Compose.self, from: String(contentsOf: root.appending(path: "docker-compose.yml"), encoding: .utf8))
    }

    @Test func theComposeFileParsesAndMatchesTheServicesSettings() throws {
        let compose = try Self.compose()
        let postgres = try #require(compose.services["postgres"])
        let cart = try #require(compose.services["cart"])
        #expect(postgres.image == "postgres:15")
        // Its PostgreSQL is the one the tests and tools connect to by default (the PG* variables).
        let defaults = TestDatabase.configuration(environment: [:])
        #expect(postgres.environment?["POSTGRES_USER"] == defaults.username && postgres.environment?["POSTGRES_PASSWORD"] == "kappa")
        #expect(postgres.ports == ["127.0.0.1:\(defaults.port ?? 0):5432"])
        let text = try String(contentsOf: Self.root.appending(path: "docker-compose.yml"), encoding: .utf8)
        #expect(text.contains("PGPASSWORD=kappa"), "the file's comment names the PG* variables that reach its PostgreSQL")
        let environment = try #require(cart.environment)
        // `migrate` logs in as the PostgreSQL service's user (the owner), once PostgreSQL is healthy;
        // the service, once it has finished, as the roles SampleApp/postgres-roles.sql creates.
        let migrate = try #require(compose.services["migrate"])
        #expect(migrate.command == ["migrate"] && migrate.depends_on?["postgres"]?.condition == "service_healthy")
        #expect(migrate.build?.dockerfile == cart.build?.dockerfile)
        let owner = try DatabaseURL.configuration(url: migrate.environment?["KAPPA_DATABASE_URL"], environment: [:])
        #expect(owner.host == "postgres" && owner.port == 5432)
        #expect(owner.username == postgres.environment?["POSTGRES_USER"])
        #expect(owner.password == postgres.environment?["POSTGRES_PASSWORD"])
        #expect(owner.database == postgres.environment?["POSTGRES_DB"])
        #expect(postgres.volumes?.contains("./SampleApp/postgres-roles.sql:/docker-entrypoint-initdb.d/10-roles.sql:ro") == true)
        let roles = try String(contentsOf: Self.root.appending(path: "SampleApp/postgres-roles.sql"), encoding: .utf8)
        for name in ["KAPPA_DATABASE_URL", "KAPPA_READ_MODEL_DATABASE_URL"] {
            let login = try DatabaseURL.configuration(url: environment[name], environment: [:])
            #expect(login.host == "postgres" && login.port == 5432 && login.database == postgres.environment?["POSTGRES_DB"])
            #expect(roles.contains("CREATE ROLE \(login.username) LOGIN PASSWORD '\(login.password ?? "")'"), "\(name): \(login.username)")
        }
        #expect(cart.depends_on?["migrate"]?.condition == "service_completed_successfully")
        let database = try DatabaseURL.configuration(url: environment["KAPPA_DATABASE_URL"], environment: [:])
        // The port the service listens on is the one published, on the host's loopback only.
        let service = CartServiceConfiguration(database: database)
        #expect(environment["CART_PORT"] == "\(service.port)")
        #expect(cart.ports == ["127.0.0.1:\(service.port):\(service.port)"])
        #expect(cart.command == ["serve"])
        // Every variable it sets is one `cart-app serve` reads.
        let serve = try String(contentsOf: Self.root.appending(path: "SampleApp/Sources/CartApp/CartApp.swift"), encoding: .utf8)
        for name in environment.keys where name != "KAPPA_DATABASE_URL" {
            #expect(serve.contains("\"\(name)\""), "cart-app serve does not read \(name)")
        }
        let build = try #require(cart.build)
        #expect(FileManager.default.fileExists(atPath: Self.root.appending(path: build.context).appending(path: build.dockerfile).path))
    }

    @Test func theDockerfileBuildsTheCartAppFromTheFilesThePackageNeeds() throws {
        let dockerfile = try String(contentsOf: Self.root.appending(path: "SampleApp/Dockerfile"), encoding: .utf8)
        #expect(dockerfile.contains("swift build -c release --package-path SampleApp --product cart-app"))
        #expect(dockerfile.contains("ENTRYPOINT [\"cart-app\"]") && dockerfile.contains("EXPOSE 8080"))
        // The sample and every top-level folder the framework's Package.swift names a target in are
        // copied into the build (the sample's package depends on the framework's by path).
        let manifest = try String(contentsOf: Self.root.appending(path: "Package.swift"), encoding: .utf8)
        let folders = Set(manifest.split(separator: "path: \"").dropFirst().compactMap { $0.split(separator: "/").first.map(String.init) })
        #expect(!folders.isEmpty)
        for folder in folders.union(["Sources", "Migrations", "Plugins", "SampleApp"]) {
            #expect(dockerfile.contains("COPY \(folder) \(folder)"), "the Dockerfile does not copy \(folder)/")
        }
    }
}
