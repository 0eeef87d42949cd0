import ArgumentParser
import Foundation
import Logging
import PostgresNIO

/// Where the event log is: the database and the log's schema, shared by every command.
struct DatabaseOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "PostgreSQL URL, postgres://USER[:PASSWORD]@HOST[:PORT][,HOST[:PORT]…]/DATABASE[?sslmode=MODE&sslrootcert=CA-FILE]; with several hosts, to the one that accepts writes (env KAPPA_DATABASE_URL; default: the PG* variables, else postgres@localhost:5432/postgres).",
            valueName: "url"))
    var databaseURL: String?

    @Option(help: "Schema of the event log (env KAPPA_LOG_SCHEMA; default kappa).")
    var logSchema: String?

    @Flag(name: .shortAndLong, help: "Log what happens (info level; otherwise errors only).")
    var verbose = false

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The log's schema: `--log-schema`, else `KAPPA_LOG_SCHEMA`, else `kappa`.
    var logSchemaName: String { logSchema ?? environment["KAPPA_LOG_SCHEMA"] ?? "kappa" }

    var logger: Logger {
        var logger = Logger(label: "kappa.cli")
        logger.logLevel = verbose ? .info : .error
        return logger
    }
}
