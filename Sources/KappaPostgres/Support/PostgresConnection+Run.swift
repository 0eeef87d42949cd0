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
