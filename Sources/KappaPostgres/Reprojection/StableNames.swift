import Logging
import PostgresNIO

/// A projection's stable names: one view per table of the active version, in a schema named after
/// the projection (`cart_summary.carts` → `cart_summary_v2.carts`). Applications query these.
///
/// The schema belongs to Kappa: a switch replaces the views in it with the new version's. Because
/// DDL is transactional in PostgreSQL, a reader sees all of the old views or all of the new ones; a
/// query that arrives during the switch waits for it (at most the switch's lock timeout) and then
/// reads the new version.
///
/// A view whose columns the new version keeps (in the same order, perhaps with more after them) is
/// replaced in place, so what others built on it (their own views, their grants) stays. A view whose
/// columns change is dropped and created anew, with the grants it had; when objects of others depend
/// on it, the switch is refused with ``ProjectionError/Code/dependentObjects`` naming them.
/// The role `<projection>_reader` (NOLOGIN) may read every stable name: the switch creates it when
/// its own role may create roles, and grants it `USAGE` and `SELECT` on each switch.
enum StableNames {
    /// Points the stable names of `id.name` at `id`'s tables, inside the caller's transaction.
    static func point(at id: ProjectionID, on connection: PostgresConnection, queries: ProjectionQueries, logger: Logger) async throws {
        let serving = id.serving.quoted
        try await connection.run("CREATE SCHEMA IF NOT EXISTS \(unescaped: serving)", logger: logger)
        let views = Set(try await relations(in: id.serving.name, kinds: ["v"], on: connection, queries: queries, logger: logger))
        // What others may do with the stable names carries over the switch: read before any view goes.
        var grants: [(grantee: String, privilege: String)] = []
        for try await (grantee, privilege) in try await connection.query(queries.viewGrants(in: id.serving.name), logger: logger)
            .decode((String, String).self) where grantablePrivileges.contains(privilege)
        {
            grants.append((grantee, privilege))
        }
        let reader = try await readerRole(of: id, on: connection, queries: queries, logger: logger)
        if let reader { try await connection.run("GRANT USAGE ON SCHEMA \(unescaped: serving) TO \(unescaped: reader)", logger: logger) }
        let tables = try await relations(in: id.schema.name, kinds: ["r", "p", "v", "m"], on: connection, queries: queries, logger: logger)
        // Views the new version has no table for go first, in name order (each DROP waits only for
        // readers of that view). Not `LOCK TABLE` on the views: that locks the tables under them too,
        // and waits for the version's runner — which may be waiting for this transaction's row lock
        // on its checkpoint.
        for view in views.subtracting(tables).sorted() {
            try await dropView(view, of: id, on: connection, logger: logger)
        }
        for table in tables {
            let quoted = SQLIdentifier.quote(catalogName: table)
            let definition = "VIEW \(serving).\(quoted) AS SELECT * FROM \(id.schema.quoted).\(quoted)"
            if !views.contains(table) {
                try await connection.run("CREATE \(unescaped: definition)", logger: logger)
            } else if try await !replaceInPlace(definition, on: connection, logger: logger) {
                try await dropView(table, of: id, on: connection, logger: logger)
                try await connection.run("CREATE \(unescaped: definition)", logger: logger)
            }
            for grant in grants {
                try await connection.run(
                    "GRANT \(unescaped: grant.privilege) ON \(unescaped: serving).\(unescaped: quoted) TO \(unescaped: grant.grantee)", logger: logger)
            }
            if let reader { try await connection.run("GRANT SELECT ON \(unescaped: serving).\(unescaped: quoted) TO \(unescaped: reader)", logger: logger) }
        }
    }

    /// `CREATE OR REPLACE` of an existing view, under a savepoint: false when PostgreSQL refuses it
    /// because the columns change (a column dropped, renamed, reordered or of another type).
    private static func replaceInPlace(_ definition: String, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run("SAVEPOINT kappa_replace_view", logger: logger)
        do {
            try await connection.run("CREATE OR REPLACE \(unescaped: definition)", logger: logger)
            try await connection.run("RELEASE SAVEPOINT kappa_replace_view", logger: logger)
            return true
        } catch let error as PSQLError where [.invalidTableDefinition, .datatypeMismatch].contains(error.sqlState) {
            try await connection.run("ROLLBACK TO SAVEPOINT kappa_replace_view", logger: logger)
            return false
        }
    }

    /// Drops a stable name; objects of others that depend on it (2BP01) make it a refusal naming them.
    private static func dropView(_ view: String, of id: ProjectionID, on connection: PostgresConnection, logger: Logger) async throws {
        do {
            try await connection.run("DROP VIEW \(unescaped: id.serving.quoted).\(unescaped: SQLIdentifier.quote(catalogName: view))", logger: logger)
        } catch let error as PSQLError where error.sqlState == .dependentObjectsStillExist {
            let dependents = error.serverInfo?[.detail].map { " (\($0.replacingOccurrences(of: "\n", with: "; ")))" } ?? ""
            throw ProjectionError(
                .dependentObjects, projection: id.name, version: id.version,
                message: """
                    cannot replace the stable name \(id.name).\(view): version \(id.version) changes its columns and objects \
                    depend on it\(dependents); drop them, switch, and create them again
                    """)
        }
    }

    /// The projection's reader role, `<projection>_reader`, quoted: created (NOLOGIN) when missing and
    /// this role may create roles; nil when it is missing and cannot be created.
    private static func readerRole(of id: ProjectionID, on connection: PostgresConnection, queries: ProjectionQueries, logger: Logger) async throws -> String? {
        let role = "\(id.name)_reader"
        let rows = try await connection.query(queries.roleState(role), logger: logger)
        for try await (exists, mayCreate) in rows.decode((Bool, Bool).self) {
            if exists { return SQLIdentifier.quote(catalogName: role) }
            guard mayCreate else {
                logger.warning(
                    "the projection's reader role is missing and this role may not create it",
                    metadata: [
                        "kappa.projection": "\(id.name)", "kappa.role": "\(role)", "kappa.sql": "CREATE ROLE \(role) NOLOGIN",
                    ])
                return nil
            }
            try await connection.run("CREATE ROLE \(unescaped: SQLIdentifier.quote(catalogName: role)) NOLOGIN", logger: logger)
            return SQLIdentifier.quote(catalogName: role)
        }
        return nil
    }

    /// The table privileges a grant on a view may name (what `aclexplode` reports); nothing else is
    /// put into a `GRANT`.
    static let grantablePrivileges: Set<String> = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]

    /// Removes the stable names (when no version is active any more).
    static func remove(_ id: ProjectionID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("DROP SCHEMA IF EXISTS \(unescaped: id.serving.quoted) CASCADE", logger: logger)
    }

    static func relations(in schema: String, kinds: [String], on connection: PostgresConnection, queries: ProjectionQueries, logger: Logger) async throws
        -> [String]
    {
        var names: [String] = []
        for try await name in try await connection.query(queries.relations(in: schema, kinds: kinds), logger: logger).decode(String.self) {
            names.append(name)
        }
        return names
    }
}
