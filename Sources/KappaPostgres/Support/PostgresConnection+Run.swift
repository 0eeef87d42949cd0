import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs `query` to completion, reading and dropping any rows.
    ///
    /// `query` returns as soon as the server describes the result, before the statement has run;
    /// an error raised while it runs (a failing function, a refused lock) surfaces only while the rows
    /// are read. Statements run for their effect must go through here so such errors are not lost.
    func run(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}

extension PostgresConnection {
    /// Runs a script of many statements inside the current transaction, with `search_path` set to
    /// `schema` for the rest of the transaction. The extended protocol takes one statement per query,
    /// so the script goes through PL/pgSQL's `EXECUTE` — as a bound parameter, never spliced into SQL.
    func runScript(_ script: String, in schema: SQLIdentifier, logger: Logger) async throws {
        try await run(
            "CREATE OR REPLACE FUNCTION pg_temp.kappa_run_script(script text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE script; END $$",
            logger: logger)
        try await run("SET LOCAL search_path TO \(unescaped: schema.quoted), pg_catalog", logger: logger)
        try await run("SELECT pg_temp.kappa_run_script(\(script))", logger: logger)
    }
}

extension PostgresConnection {
    /// Runs `query` and decodes every row (read to the end: an abandoned row stream can keep the
    /// connection busy).
    func allRows<Row>(_ query: PostgresQuery, logger: Logger, _ decode: (PostgresRow) throws -> Row) async throws -> [Row] {
        var rows: [Row] = []
        for try await row in try await self.query(query, logger: logger) { rows.append(try decode(row)) }
        return rows
    }
}
