import ArgumentParser
import Foundation
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
    ///   or `nil` for the environment.
    /// - Throws: `ValidationError` (a usage error) for a URL of another shape; ``DatabaseURLError``
    ///   for a TLS setting that cannot be used (an unknown `sslmode`, a CA file that cannot be read,
    ///   `verify-ca`/`verify-full` without a CA). The password never appears in a message.
    public static func configuration(url: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresClient.Configuration {
        if let url = url ?? environment["KAPPA_DATABASE_URL"] {
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
}
