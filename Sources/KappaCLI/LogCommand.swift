import ArgumentParser

/// The `log` command group, for an application to embed in its own executable:
///
/// ```swift
/// @main struct CartApp: AsyncParsableCommand {
///     static let configuration = CommandConfiguration(subcommands: [Serve.self, LogCommand.self])
/// }
/// ```
/// Then `cart-app log verify`, `cart-app log verify --stream cart-42`.
public struct LogCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Check the event log: verify its hash chains.",
        discussion: """
            Connection: --database-url, else KAPPA_DATABASE_URL, else the PG* variables (PGHOST, PGPORT, \
            PGUSER, PGPASSWORD, PGDATABASE), else postgres@localhost:5432/postgres. TLS as libpq: \
            ?sslmode=disable|allow|prefer|require|verify-ca|verify-full (else PGSSLMODE; default prefer) and \
            ?sslrootcert=CA-FILE or system (else PGSSLROOTCERT), needed by verify-ca and verify-full.
            """,
        subcommands: [LogVerifyCommand.self])

    public init() {}
}
