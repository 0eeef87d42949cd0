import Foundation

/// One versioned SQL file: `NNNN_description.sql`, applied once, in version order, never edited after.
public struct Migration: Hashable, Sendable {
    /// The number the file name starts with.
    public let version: Int
    /// The file name, such as `0001_event_log.sql`.
    public let name: String
    /// The file's SQL, run with `search_path` set to the migrated schema.
    public let sql: String

    /// - Throws: ``KappaPostgresError/Code/invalidMigrationFile`` when `name` is not `NNNN_description.sql`.
    public init(name: String, sql: String) throws {
        let stem = name.hasSuffix(".sql") ? name.dropLast(4) : ""
        let digits = stem.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, let version = Int(digits), version > 0,
            stem.dropFirst(digits.count).first == "_", stem.count > digits.count + 1
        else {
            throw KappaPostgresError(
                .invalidMigrationFile, file: name,
                message: "migration file '\(name)' must be named NNNN_description.sql with NNNN > 0")
        }
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// The `*.sql` files of `directory`, sorted by version.
    /// - Throws: ``KappaPostgresError/Code/invalidMigrationFile`` naming a badly named file or a repeated version.
    public static func load(directory: URL) throws -> [Migration] {
        let urls = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
        return try ordered(urls.map { try Migration(name: $0.lastPathComponent, sql: String(contentsOf: $0, encoding: .utf8)) })
    }

    /// `migrations` sorted by version, refusing two with the same version.
    static func ordered(_ migrations: [Migration]) throws -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.version == b.version {
            throw KappaPostgresError(
                .invalidMigrationFile, file: b.name,
                message: "migrations '\(a.name)' and '\(b.name)' share version \(a.version)")
        }
        return sorted
    }

    /// The event log's own schema (the package's `Migrations/log/*.sql`, embedded at build time).
    public static let eventLog: [Migration] = embedded("log")

    /// The projection runtime's schema: checkpoints, leases, dead letters, status
    /// (`Migrations/projections/*.sql`, embedded at build time).
    public static let projectionRuntime: [Migration] = embedded("projections")

    private static func embedded(_ set: String) -> [Migration] {
        do {
            return try ordered(EmbeddedMigrations.files.filter { $0.set == set }.map { try Migration(name: $0.name, sql: $0.sql) })
        } catch {
            preconditionFailure("the embedded migrations of Migrations/\(set) are invalid: \(error)")
        }
    }
}
