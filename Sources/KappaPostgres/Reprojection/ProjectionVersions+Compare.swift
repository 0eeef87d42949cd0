import Kappa
import Logging
import PostgresNIO

extension ProjectionVersions {
    /// Compares two versions of `name` over the same log range: in one snapshot, taken when both
    /// checkpoints are equal (waiting up to `timeout` for them to meet; after that the result says
    /// ``ProjectionComparison/samePosition`` is false). Run it before a promote.
    ///
    /// - Parameters:
    ///   - name: The projection.
    ///   - old: The version readers see now, usually.
    ///   - new: The version to compare with it.
    ///   - ignoring: Columns left out of the comparison (timestamps, writer names).
    ///   - timeout: How long to wait for the two checkpoints to meet.
    /// - Throws: ``ProjectionError`` — `unknownVersion`, `versionDropped`.
    public func compare(_ name: String, old: Int, new: Int, ignoring: Set<String> = [], timeout: Duration = .seconds(10)) async throws -> ProjectionComparison {
        let oldID = try ProjectionID(name: name, version: old), newID = try ProjectionID(name: name, version: new)
        for version in [old, new] {
            guard let row = try await versions(of: name).first(where: { $0.version == version }) else {
                throw ProjectionError(.unknownVersion, projection: name, version: version, message: "no such version is registered")
            }
            if row.lifecycle == .dropped {
                throw ProjectionError(.versionDropped, projection: name, version: version, message: "was dropped; there is nothing to compare")
            }
        }
        let deadline = ContinuousClock.now + timeout
        let queries = core.queries, logger = core.logger
        while true {
            let last = ContinuousClock.now >= deadline
            let result: ProjectionComparison? = try await durableTransaction { connection in
                try await connection.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
                var rows: [ProjectionVersion] = []
                for try await row in try await connection.query(queries.versions(name), logger: logger) {
                    rows.append(try ProjectionVersion(name: name, row: row))
                }
                guard let a = rows.first(where: { $0.version == old }), let b = rows.first(where: { $0.version == new }) else { return nil }
                guard a.checkpoint == b.checkpoint || last else { return nil }
                return try await Self.compareTables(
                    oldID, newID, checkpoints: (a.checkpoint, b.checkpoint), ignoring: ignoring,
                    on: connection, queries: queries, logger: logger)
            }
            if let result { return result }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    private static func compareTables(
        _ old: ProjectionID, _ new: ProjectionID, checkpoints: (LogPosition, LogPosition), ignoring: Set<String>,
        on connection: PostgresConnection, queries: ProjectionQueries, logger: Logger
    ) async throws -> ProjectionComparison {
        let kinds = ["r", "p", "v", "m"]
        let oldTables = try await StableNames.relations(in: old.schema.name, kinds: kinds, on: connection, queries: queries, logger: logger)
        let newTables = try await StableNames.relations(in: new.schema.name, kinds: kinds, on: connection, queries: queries, logger: logger)
        var tables: [ProjectionComparison.Table] = []
        for table in oldTables where newTables.contains(table) {
            let oldColumns = try await columns(of: old.schema.name, table, on: connection, logger: logger)
            let newColumns = try await columns(of: new.schema.name, table, on: connection, logger: logger)
            let shared = oldColumns.filter { newColumns.contains($0) && !ignoring.contains($0) }
            let quotedTable = SQLIdentifier.quote(catalogName: table)
            let a = "\(old.schema.quoted).\(quotedTable)", b = "\(new.schema.quoted).\(quotedTable)"
            let list = shared.isEmpty ? "1" : shared.map { "\(SQLIdentifier.quote(catalogName: $0))::text" }.joined(separator: ", ")
            var counts: (Int64, Int64, Int64, Int64) = (0, 0, 0, 0)
            let query: PostgresQuery = """
                SELECT (SELECT count(*) FROM \(unescaped: a)), (SELECT count(*) FROM \(unescaped: b)),
                       (SELECT count(*) FROM (SELECT \(unescaped: list) FROM \(unescaped: a) EXCEPT ALL SELECT \(unescaped: list) FROM \(unescaped: b)) d),
                       (SELECT count(*) FROM (SELECT \(unescaped: list) FROM \(unescaped: b) EXCEPT ALL SELECT \(unescaped: list) FROM \(unescaped: a)) d)
                """
            for try await row in try await connection.query(query, logger: logger).decode((Int64, Int64, Int64, Int64).self) { counts = row }
            tables.append(
                .init(
                    name: table, comparedColumns: shared, columnsOnlyInOld: oldColumns.filter { !newColumns.contains($0) },
                    columnsOnlyInNew: newColumns.filter { !oldColumns.contains($0) }, rowsInOld: Int(counts.0), rowsInNew: Int(counts.1),
                    rowsOnlyInOld: Int(counts.2), rowsOnlyInNew: Int(counts.3)))
        }
        return ProjectionComparison(
            name: old.name, oldVersion: old.version, newVersion: new.version, oldCheckpoint: checkpoints.0, newCheckpoint: checkpoints.1,
            tables: tables, tablesOnlyInOld: oldTables.filter { !newTables.contains($0) }, tablesOnlyInNew: newTables.filter { !oldTables.contains($0) })
    }

    private static func columns(of schema: String, _ table: String, on connection: PostgresConnection, logger: Logger) async throws -> [String] {
        var names: [String] = []
        let query: PostgresQuery = """
            SELECT a.attname::text FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = \(schema) AND c.relname = \(table) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """
        for try await name in try await connection.query(query, logger: logger).decode(String.self) { names.append(name) }
        return names
    }
}
