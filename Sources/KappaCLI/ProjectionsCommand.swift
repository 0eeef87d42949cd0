import ArgumentParser
import KappaPostgres

/// What an application tells the `projections` commands: the projection versions whose handler code
/// its executable contains (a rebuild runs them).
public protocol ProjectionCommandHost {
    /// Every projection version the application registers, old and new.
    static func projections() -> [any Projection]
}

/// The `projections` command group, for an application to embed in its own executable:
///
/// ```swift
/// enum CartHost: ProjectionCommandHost {
///     static func projections() -> [any Projection] { [CartSummaryV1(), CartSummaryV2()] }
/// }
/// @main struct CartApp: AsyncParsableCommand {
///     static let configuration = CommandConfiguration(subcommands: [Serve.self, ProjectionsCommand<CartHost>.self])
/// }
/// ```
/// Then `cart-app projections status`, `… rebuild cart_summary --version 2`, `… compare cart_summary --old 1 --new 2`,
/// `… promote cart_summary --version 2`, `… rollback cart_summary`, `… drop cart_summary --version 1`.
public struct ProjectionsCommand<Host: ProjectionCommandHost>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "projections",
            abstract: "Operate projection versions: status, rebuild, compare, promote, rollback, drop.",
            discussion: """
                A read model changes shape by replay: ship a new projection version, rebuild it from the log \
                beside the serving one, compare the two, promote the new one (readers switch in one transaction), \
                roll back if needed, and drop the old version when it is no longer wanted.

                Connection: --database-url, else KAPPA_DATABASE_URL, else the PG* variables (PGHOST, PGPORT, \
                PGUSER, PGPASSWORD, PGDATABASE), else postgres@localhost:5432/postgres. TLS as libpq: \
                ?sslmode=disable|allow|prefer|require|verify-ca|verify-full (else PGSSLMODE; default prefer) and \
                ?sslrootcert=CA-FILE or system (else PGSSLROOTCERT), needed by verify-ca and verify-full.
                """,
            subcommands: [
                StatusCommand<Host>.self, RebuildCommand<Host>.self, CompareCommand<Host>.self,
                PromoteCommand<Host>.self, RollbackCommand<Host>.self, DropCommand<Host>.self,
            ],
            defaultSubcommand: StatusCommand<Host>.self)
    }

    public init() {}
}
