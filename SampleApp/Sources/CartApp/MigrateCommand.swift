import ArgumentParser
import Foundation
import KappaCLI
import KappaPostgres
import Logging
import PostgresNIO

/// `cart-app migrate`: the log's migrations, as the role that owns the log.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or update the event log's schema, as its owner; the service then runs as roles that do not own it.",
        discussion: """
            Applies the log's migrations and repairs its order after a restore. They create the group roles \
            <schema>_writer (append and read) and <schema>_reader (read); grant the first to the role \
            `serve` logs in as (--database-url), the second to the role its projections run as \
            (--read-model-database-url), which also needs CREATE on the database for the read models' \
            schemas. `serve` and `worker` find the log up to date and change nothing in it.
            """)

    @Option(help: "PostgreSQL URL, as the owner (env KAPPA_DATABASE_URL; default: the PG* variables, else postgres@localhost:5432/postgres).")
    var databaseURL: String?
    @Option(help: "Schema of the event log (env KAPPA_LOG_SCHEMA; default kappa).") var logSchema: String?

    func run() async throws {
        var logger = Logger(label: "kappa.cart.migrate")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let client = PostgresClient(configuration: try DatabaseURL.configuration(url: databaseURL), backgroundLogger: logger)
        let schema = logSchema ?? ProcessInfo.processInfo.environment["KAPPA_LOG_SCHEMA"] ?? "kappa"
        let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: logger)
        let applied = try await withThrowingTaskGroup(of: [Migration]?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await store.migrate()
        }
        print(
            applied.isEmpty
                ? "the log in schema \(schema) is up to date"
                : "applied \(applied.map(\.name).joined(separator: ", ")) to the log in schema \(schema)")
    }
}
