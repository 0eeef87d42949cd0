import ArgumentParser
import Foundation
import Kappa
import KappaPostgres
import Logging
import PostgresNIO

/// Where the log and the read models are, shared by every `projections` command.
struct ConnectionOptions: ParsableArguments {
    @OptionGroup var database: DatabaseOptions

    @Option(help: "Schema of the projection runtime's tables (env KAPPA_RUNTIME_SCHEMA; default kappa_projections).")
    var runtimeSchema: String?

    @Option(
        help: ArgumentHelp(
            "PostgreSQL URL of the read models and the runtime's tables, when they are on another server or database than the log (env KAPPA_READ_MODEL_DATABASE_URL; default: the log's).",
            valueName: "url"))
    var readModelDatabaseURL: String?

    var environment: [String: String] { database.environment }
    var logger: Logger { database.logger }

    func runtimeConfiguration() -> ProjectionRuntime.Configuration {
        var configuration = ProjectionRuntime.Configuration()
        configuration.schema = runtimeSchema ?? environment["KAPPA_RUNTIME_SCHEMA"] ?? "kappa_projections"
        configuration.owner = "cli-\(configuration.owner)"
        return configuration
    }

    /// The read models' URL: `--read-model-database-url`, else `KAPPA_READ_MODEL_DATABASE_URL`,
    /// else nil (the log's).
    var readModelURL: String? {
        guard let url = readModelDatabaseURL ?? environment["KAPPA_READ_MODEL_DATABASE_URL"], !url.isEmpty else { return nil }
        return url
    }

    /// Runs `body` with a connected versions API; refusals become a one-line error and exit status 1.
    func withVersions<R: Sendable>(
        projections: [any Projection], configure: (inout ProjectionRuntime.Configuration) -> Void = { _ in },
        _ body: @Sendable (ProjectionVersions) async throws -> R
    ) async throws -> R {
        let logger = self.logger
        // A URL of several hosts is reached through a PrimaryRouter (to the one that accepts writes).
        let log = try await DatabaseClient.connect(url: database.databaseURL, environment: environment, logger: logger)
        var readModelDatabase: DatabaseClient?
        if let url = readModelURL { readModelDatabase = try await DatabaseClient.connect(url: url, environment: environment, logger: logger) }
        let client = log.client, readModels = readModelDatabase?.client
        var configuration = runtimeConfiguration()
        configure(&configuration)
        let store = try PostgresEventStore(client: client, configuration: .init(schema: database.logSchemaName), logger: logger)
        let versions = try ProjectionVersions(
            log: store, readModels: readModels ?? client, projections: projections, configuration: configuration, logger: logger)
        do {
            return try await withThrowingTaskGroup(of: Void.self) { group in
                for service in log.services + (readModelDatabase?.services ?? []) { group.addTask { try await service.run() } }
                defer { group.cancelAll() }
                // A read-model URL or runtime schema that points at the log's is named before anything runs.
                try await versions.refuseALogsSchema()
                return try await body(versions)
            }
        } catch let error as ProjectionError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        } catch let error as KappaPostgresError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        } catch let error as PSQLError {
            FileHandle.standardError.write(Data("error: the database refused or could not be reached: \(String(reflecting: error))\n".utf8))
            throw ExitCode(1)
        }
    }
}
