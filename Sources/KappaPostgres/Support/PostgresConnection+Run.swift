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
    /// Runs a prepared statement and reads every row.
    ///
    /// postgres-nio 1.33 remembers a statement whose preparation failed and fails it on that
    /// connection ever after, without asking the server again. So when it fails for a reason that
    /// may have come from its preparation — a table missing (the log not migrated yet), an aborted
    /// transaction — the statements' names move to a new generation (``PreparedStatementGeneration``),
    /// which every connection prepares afresh; the caller gets the error. (Closing the connection
    /// instead raced the pool, which handed it out again to an append.)
    func executeAll<Statement: PostgresPreparedStatement>(_ statement: Statement, logger: Logger) async throws -> [Statement.Row]
    where Statement.Row: Sendable {
        do {
            var rows: [Statement.Row] = []
            for try await row in try await execute(statement, logger: logger) { rows.append(row) }
            return rows
        } catch let error as PSQLError where error.serverInfo?[.sqlState].map(Self.preparationFailures.contains) ?? false {
            PreparedStatementGeneration.advance()
            throw error
        }
    }

    /// SQLSTATEs with which preparing a statement can fail: an aborted transaction, a missing
    /// schema, table, column, function or type.
    static let preparationFailures: Set<String> = ["25P02", "3F000", "42P01", "42703", "42883", "42704"]
}
