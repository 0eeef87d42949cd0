import Logging
import PostgresNIO

/// A projection's stable names: one view per table of the active version, in a schema named after
/// the projection (`cart_summary.carts` → `cart_summary_v2.carts`). Applications query these.
///
/// The schema belongs to Kappa: a switch drops every view in it and creates the new version's.
/// Because DDL is transactional in PostgreSQL, a reader sees all of the old views or all of the new
/// ones; a query that arrives during the switch waits for it (at most the switch's lock timeout)
/// and then reads the new version.
enum StableNames {
    /// Points the stable names of `id.name` at `id`'s tables, inside the caller's transaction. What
    /// others were granted on the old views (a reader role's `SELECT`) is granted on every new one.
    static func point(at id: ProjectionID, on connection: PostgresConnection, queries: ProjectionQueries, logger: Logger) async throws {
        let serving = id.serving.quoted
        try await connection.run("CREATE SCHEMA IF NOT EXISTS \(unescaped: serving)", logger: logger)
        let views = try await relations(in: id.serving.name, kinds: ["v"], on: connection, queries: queries, logger: logger)
        // What others may do with the stable names carries over the switch: read before the views go.
        var grants: [(grantee: String, privilege: String)] = []
        for try await (grantee, privilege) in try await connection.query(queries.viewGrants(in: id.serving.name), logger: logger)
            .decode((String, String).self) where grantablePrivileges.contains(privilege) {
            grants.append((grantee, privilege))
        }
        // In name order (each DROP waits only for readers of that view). Not `LOCK TABLE` on the views:
        // that locks the tables under them too, and waits for the version's runner — which may be
        // waiting for this transaction's row lock on its checkpoint.
        for view in views {
            try await connection.run("DROP VIEW \(unescaped: serving).\(unescaped: SQLIdentifier.quote(catalogName: view))", logger: logger)
        }
        let tables = try await relations(in: id.schema.name, kinds: ["r", "p", "v", "m"], on: connection, queries: queries, logger: logger)
        for table in tables {
            let quoted = SQLIdentifier.quote(catalogName: table)
            try await connection.run(
                "CREATE VIEW \(unescaped: serving).\(unescaped: quoted) AS SELECT * FROM \(unescaped: id.schema.quoted).\(unescaped: quoted)",
                logger: logger)
            for grant in grants {
                try await connection.run("GRANT \(unescaped: grant.privilege) ON \(unescaped: serving).\(unescaped: quoted) TO \(unescaped: grant.grantee)", logger: logger)
            }
        }
    }

    /// The table privileges a grant on a view may name (what `aclexplode` reports); nothing else is
    /// put into a `GRANT`.
    static let grantablePrivileges: Set<String> = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]

    /// Removes the stable names (when no version is active any more).
    static func remove(_ id: ProjectionID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("DROP SCHEMA IF EXISTS \(unescaped: id.serving.quoted) CASCADE", logger: logger)
    }

    static func relations(in schema: String, kinds: [String], on connection: PostgresConnection, queries: ProjectionQueries, logger: Logger) async throws -> [String] {
        var names: [String] = []
        for try await name in try await connection.query(queries.relations(in: schema, kinds: kinds), logger: logger).decode(String.self) {
            names.append(name)
        }
        return names
    }
}
