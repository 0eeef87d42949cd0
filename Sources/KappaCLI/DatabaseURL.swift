import ArgumentParser
import Foundation
import KappaPostgres
import PostgresNIO

/// Where an application's database is: a URL, else `KAPPA_DATABASE_URL`, else the `PG*` variables,
/// else `postgres@localhost:5432/postgres`. For applications' own commands, as the `projections`
/// commands read it.
///
/// TLS follows libpq: `?sslmode=disable|allow|prefer|require|verify-ca|verify-full` and
/// `sslrootcert=/path/to/ca.pem` (or `system`, the system's trust store) in the URL, else
/// `PGSSLMODE` and `PGSSLROOTCERT`, else `prefer`. `prefer` and `require` encrypt without checking
/// the server's certificate unless a CA is given; `verify-ca` checks it against the CA, `verify-full`
/// also checks that it names the host.
public enum DatabaseURL {
    /// - Parameter url: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=…]`,
    ///   or `nil` for the environment. A URL of several hosts (`HOST[:PORT],HOST[:PORT]`) gives the
    ///   first host's configuration: reach them all through ``DatabaseClient``.
    /// - Throws: `ValidationError` (a usage error) for a URL of another shape; ``DatabaseURLError``
    ///   for a TLS setting that cannot be used (an unknown `sslmode`, a CA file that cannot be read,
    ///   `verify-ca`/`verify-full` without a CA). The password never appears in a message.
    public static func configuration(url: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresClient.Configuration {
        if let given = url ?? environment["KAPPA_DATABASE_URL"] {
            // Several hosts: the first stands for them here (``hosts(url:environment:)`` has them all).
            let url = try MultiHostURL(given).map { $0.withFirstHostOnly } ?? given
            guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
                let host = components.host, !host.isEmpty
            else {
                throw ValidationError("the database URL must look like postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
            }
            let database = String(components.path.drop { $0 == "/" })
            let tls = try DatabaseTLS(query: components.queryItems, environment: environment)
            return PostgresClient.Configuration(
                host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
                password: components.password, database: database.isEmpty ? nil : database, tls: tls.clientTLS)
        }
        let tls = try DatabaseTLS(query: nil, environment: environment)
        return PostgresClient.Configuration(
            host: environment["PGHOST"].flatMap { $0.isEmpty || $0.hasPrefix("/") ? nil : $0 } ?? "localhost",
            port: environment["PGPORT"].flatMap(Int.init) ?? 5432, username: environment["PGUSER"] ?? "postgres",
            password: environment["PGPASSWORD"], database: environment["PGDATABASE"] ?? "postgres", tls: tls.clientTLS)
    }

    /// The same database for libpq (``ProjectionRuntime/Configuration/pipelineConnectionString``):
    /// the URL (or `KAPPA_DATABASE_URL`), which libpq reads as it is, or `""`, with which libpq reads
    /// the `PG*` variables itself. The URL is checked as ``configuration(url:environment:)`` checks it.
    /// libpq 15 (Debian 12) does not know `sslrootcert=system`: give it a CA file there.
    public static func connectionString(url: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        _ = try configuration(url: url, environment: environment)
        return url ?? environment["KAPPA_DATABASE_URL"] ?? ""
    }

    /// The hosts a URL names: one for `postgres://u@db1/shop`, several for
    /// `postgres://u@db1:5432,db2:5432/shop?target_session_attrs=read-write`, as libpq takes them.
    /// A client of several hosts reaches them through a ``PrimaryRouter`` (``DatabaseClient``): the
    /// one that accepts writes, found again after a failover. `nil` when the URL is not given (the
    /// `PG*` variables name one host).
    /// - Throws: ``DatabaseURLError`` `.invalidHosts` for a port that is not a number, or a
    ///   `target_session_attrs` other than `read-write` or `primary` beside several hosts.
    public static func hosts(url: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [PrimaryRouter.Host]? {
        guard let given = url ?? environment["KAPPA_DATABASE_URL"] else { return nil }
        if let multiple = try MultiHostURL(given) { return multiple.hosts }
        let configuration = try configuration(url: given, environment: environment)
        return [PrimaryRouter.Host(host: configuration.host ?? "localhost", port: configuration.port ?? 5432)]
    }

    /// How to reach a URL of several hosts through a ``PrimaryRouter`` (its hosts, and the TLS it
    /// looks at them with, from the URL's `sslmode` and `sslrootcert`); `nil` for one host.
    /// - Throws: what ``hosts(url:environment:)`` and ``configuration(url:environment:)`` throw.
    public static func routing(url: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PrimaryRouter.Routing? {
        guard let given = url ?? environment["KAPPA_DATABASE_URL"], let multiple = try MultiHostURL(given) else { return nil }
        let tls = try DatabaseTLS(query: URLComponents(string: multiple.withFirstHostOnly)?.queryItems, environment: environment)
        return PrimaryRouter.Routing(hosts: multiple.hosts, tls: try tls.connectionTLS)
    }
}
