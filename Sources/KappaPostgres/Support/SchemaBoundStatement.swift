import Logging
import PostgresNIO

/// The name, SQL and parameter types of one of Kappa's prepared statements.
///
/// postgres-nio takes a prepared statement's name and SQL as *static* requirements, but Kappa's SQL
/// names a schema chosen at run time. So each statement type binds its text in a task-local
/// (``SchemaBoundStatement/text``) around the driver call, which reads it on the calling task;
/// unbound, the SQL is a call that fails, never a statement on some other schema. Names are
/// distinct per schema and shape (the driver caches statements per connection by name).
struct StatementText: Sendable {
    var name: String
    let sql: String
    let types: [PostgresDataType]

    /// What makes a statement's name unique to `schema`. Statement names are kept within PostgreSQL's
    /// 63 bytes (longer ones would be cut, and could clash): prefixes are at most 18 bytes, this at
    /// most 40, a generation's suffix 3.
    static func suffix(for schema: String) -> String {
        schema.utf8.count <= 40 ? schema : String(stableHash(schema), radix: 16)
    }
}

/// A prepared statement whose text is bound at run time (see ``StatementText``).
protocol SchemaBoundStatement: PostgresPreparedStatement where Row: Sendable {
    /// The text bound for the current task; declare it `static let text = TaskLocal<StatementText?>(wrappedValue: nil)`.
    static var text: TaskLocal<StatementText?> { get }
}

extension SchemaBoundStatement {
    static var name: String { text.get()?.name ?? "kappa_unbound_statement" }
    static var sql: String { text.get()?.sql ?? "SELECT kappa_statement_used_without_its_schema()" }
    static var bindingDataTypes: [PostgresDataType] { text.get()?.types ?? [] }
}

extension PostgresConnection {
    /// Runs `statement` with `text` (in the current ``PreparedStatementGeneration``) and reads every row.
    ///
    /// postgres-nio 1.33 remembers a statement whose preparation failed and fails it on that
    /// connection ever after, without asking the server again. So when it fails for a reason that
    /// may have come from its preparation — a table missing (the log not migrated yet), an aborted
    /// transaction — the statements' names move to a new generation, which every connection prepares
    /// afresh; the caller gets the error. (Closing the connection instead raced the pool, which
    /// handed it out again to an append.)
    func executeAll<Statement: SchemaBoundStatement>(_ statement: Statement, as text: StatementText, logger: Logger) async throws -> [Statement.Row] {
        var bound = text
        bound.name = PreparedStatementGeneration.name(text.name)
        return try await Statement.text.withValue(bound) {
            do {
                var rows: [Statement.Row] = []
                for try await row in try await execute(statement, logger: logger) { rows.append(row) }
                return rows
            } catch let error as PSQLError where error.sqlState.map(Self.preparationFailures.contains) ?? false {
                PreparedStatementGeneration.advance()
                throw error
            }
        }
    }

    /// SQLSTATEs with which preparing a statement can fail: an aborted transaction, a missing
    /// schema, table, column, function or type.
    static let preparationFailures: [PostgresError.Code] = [
        .inFailedSqlTransaction, .invalidSchemaName, .undefinedTable, .undefinedColumn, .undefinedFunction, .undefinedObject,
    ]
}
