import ArgumentParser
import Foundation
import PostgresNIO

/// Where an application's database is: a URL, else `KAPPA_DATABASE_URL`, else the `PG*` variables,
/// else `postgres@localhost:5432/postgres`. For applications' own commands, as the `projections`
/// commands read it.
public enum DatabaseURL {
    /// - Parameter url: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or `nil` for the environment.
    /// - Throws: `ValidationError` (a usage error) for a URL of another shape. The password never
    ///   appears in a message.
    public static func configuration(url: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresClient.Configuration {
        if let url = url ?? environment["KAPPA_DATABASE_URL"] {
            guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
                  let host = components.host, !host.isEmpty else {
                throw ValidationError("the database URL must look like postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
            }
            let database = String(components.path.drop { $0 == "/" })
            return PostgresClient.Configuration(
                host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
                password: components.password, database: database.isEmpty ? nil : database, tls: .disable)
        }
        return PostgresClient.Configuration(
            host: environment["PGHOST"].flatMap { $0.isEmpty || $0.hasPrefix("/") ? nil : $0 } ?? "localhost",
            port: environment["PGPORT"].flatMap(Int.init) ?? 5432, username: environment["PGUSER"] ?? "postgres",
            password: environment["PGPASSWORD"], database: environment["PGDATABASE"] ?? "postgres", tls: .disable)
    }
}
