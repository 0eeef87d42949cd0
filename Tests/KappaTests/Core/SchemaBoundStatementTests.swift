import PostgresNIO
import Testing

@testable import KappaPostgres

/// postgres-nio reads a prepared statement's name, SQL and types through its own protocol (generic
/// code, a witness table): the ones bound for the call must win over its defaults (its default name,
/// the type's name, would be shared by every schema — and a connection would run one schema's
/// statement for another).
@Suite("Run-time-bound prepared statements")
struct SchemaBoundStatementTests {
    static func seen<S: PostgresPreparedStatement>(_: S.Type) -> (String, String, [PostgresDataType]) { (S.name, S.sql, S.bindingDataTypes) }

    @Test func theDriverSeesTheTextBoundForTheCall() {
        let text = StatementText(name: "kappa_bound_x", sql: "SELECT $1::int8", types: [.int8])
        for seen in [
            AdvanceStatement.text.withValue(text) { Self.seen(AdvanceStatement.self) },
            ReadPageStatement.text.withValue(text) { Self.seen(ReadPageStatement.self) },
            AppendStatement.text.withValue(text) { Self.seen(AppendStatement.self) },
        ] {
            #expect(seen.0 == "kappa_bound_x" && seen.1 == "SELECT $1::int8" && seen.2 == [.int8])
        }
        // Unbound: a statement that fails, never another schema's.
        #expect(Self.seen(AdvanceStatement.self).1.contains("used_without_its_schema"))
    }
}
