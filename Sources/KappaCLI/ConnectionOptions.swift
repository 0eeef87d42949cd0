import ArgumentParser
import Foundation
import Kappa
import KappaPostgres
import Logging
import PostgresNIO

/// Where the log and the read models are, shared by every `projections` command.
struct ConnectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "PostgreSQL URL, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE&sslrootcert=CA-FILE] (env KAPPA_DATABASE_URL; default: the PG* variables, else postgres@localhost:5432/postgres).",
        valueName: "url"))
    var databaseURL: String?

    @Option(help: "Schema of the event log (env KAPPA_LOG_SCHEMA; default kappa).")
    var logSchema: String?

    @Option(help: "Schema of the projection runtime's tables (env KAPPA_RUNTIME_SCHEMA; default kappa_projections).")
    var runtimeSchema: String?

    @Flag(name: .shortAndLong, help: "Log what happens (info level; otherwise errors only).")
    var verbose = false

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The client configuration. The password is never printed or logged.
    func clientConfiguration() throws -> PostgresClient.Configuration {
        try DatabaseURL.configuration(url: databaseURL, environment: environment)
    }

    func runtimeConfiguration() -> ProjectionRuntime.Configuration {
        var configuration = ProjectionRuntime.Configuration()
        configuration.schema = runtimeSchema ?? environment["KAPPA_RUNTIME_SCHEMA"] ?? "kappa_projections"
        configuration.owner = "cli-\(configuration.owner)"
        return configuration
    }

    var logger: Logger {
        var logger = Logger(label: "kappa.cli")
        logger.logLevel = verbose ? .info : .error
        return logger
    }

    /// Runs `body` with a connected versions API; refusals become a one-line error and exit status 1.
    func withVersions<R: Sendable>(
        projections: [any Projection], configure: (inout ProjectionRuntime.Configuration) -> Void = { _ in },
        _ body: @Sendable (ProjectionVersions) async throws -> R
    ) async throws -> R {
        let logger = self.logger
        let client = PostgresClient(configuration: try clientConfiguration(), backgroundLogger: logger)
        var configuration = runtimeConfiguration()
        configure(&configuration)
        let store = try PostgresEventStore(client: client, configuration: .init(schema: logSchema ?? environment["KAPPA_LOG_SCHEMA"] ?? "kappa"), logger: logger)
        let versions = try ProjectionVersions(log: store, readModels: client, projections: projections, configuration: configuration, logger: logger)
        do {
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
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
