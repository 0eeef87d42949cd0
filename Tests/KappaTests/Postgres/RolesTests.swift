import Foundation
import Kappa
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// The log's roles (Migrations/log/0005_roles.sql), tried with real login roles over password logins.
@Suite("PostgreSQL log: roles", .serialized)
struct RolesTests {
    /// The SQLSTATE `sql` fails with, nil when it succeeds.
    func sqlState(of sql: String, on client: PostgresClient) async -> String? {
        do {
            // Read to the end: an error raised while the statement runs (a trigger's) comes with the rows.
            _ = try await client.query(PostgresQuery(unsafeSQL: sql), logger: testLogger).collect()
            return nil
        } catch let error as PSQLError {
            return error.serverInfo?[.sqlState] ?? "\(error.code)"
        } catch {
            return "\(error)"
        }
    }

    func insert(into schema: String, stream: String, columns: String = "", values: String = "", overriding: String = "") -> String {
        """
        INSERT INTO \(schema).events (event_id, stream_id, stream_version, event_type, schema_version, payload, recorded_at\(columns))
        \(overriding) VALUES ('\(UUID())', '\(stream)', 1, 'Deposited', 1, '{}', now()\(values))
        """
    }

    @Test func aWriterAppendsAndReadsAndIsRefusedEverythingElse() async throws {
        try await withEventStore { owner, admin in
            let schema = owner.configuration.schema
            _ = try await owner.append(try deposits(2), to: "account-0", expectedVersion: .noStream)
            try await withLogin(granted: ["\(schema)_writer"], admin: admin) { client, _ in
                for prepared in [true, false] {
                    var configuration = PostgresEventStore.Configuration(schema: schema)
                    configuration.preparedStatements = prepared
                    let store = try PostgresEventStore(client: client, configuration: configuration, logger: testLogger)
                    let stream = try StreamID("account-\(prepared)")
                    _ = try await store.append(try deposits(1), to: stream, expectedVersion: .noStream)
                    let many = try await store.append(try deposits(2), to: stream, expectedVersion: .exact(1))
                    #expect(many.streamVersion == 3)
                    #expect(try await store.readStream(stream, from: 1, limit: 10).count == 3)
                }
                let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
                // At its start, it finds the log up to date, and changes nothing.
                #expect(try await store.migrate().isEmpty)
                // Whole-log reads stop at the oldest open transaction, which other suites' can hold back.
                try await eventually("the writer reads the whole log") {
                    try await store.readLog(after: .start, limit: 100).count == 8
                }
                // It may see what holds the log's horizon back (the status's figure).
                _ = try await store.horizonHolders()
                let events = "\(schema).events"
                let refused = [
                    "UPDATE \(events) SET payload = '{}'", "DELETE FROM \(events)", "TRUNCATE \(events)",
                    "ALTER TABLE \(events) DISABLE TRIGGER ALL", "ALTER TABLE \(events) DISABLE TRIGGER events_refuse_update_delete",
                    "CREATE OR REPLACE FUNCTION \(schema).events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
                    "DROP TABLE \(events)", "CREATE TABLE \(schema).forged (id int)",
                    insert(into: schema, stream: "forged-1", columns: ", transaction_id", values: ", '3'"),
                    insert(into: schema, stream: "forged-2", columns: ", position", values: ", 1000000", overriding: "OVERRIDING SYSTEM VALUE"),
                ]
                for statement in refused {
                    let state = await sqlState(of: statement, on: client)
                    #expect(state == "42501" || state == "KP001", "\(statement): \(state ?? "succeeded")")
                }
            }
            #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).events", on: admin) == 8)
            #expect(
                try await scalar(
                    """
                    SELECT count(*) FROM pg_trigger WHERE tgrelid = '\(unescaped: schema).events'::regclass AND tgenabled = 'O' AND NOT tgisinternal
                    """, on: admin) == 5) // refuse update/delete, refuse truncate, stamp order, chain, guard order
        }
    }

    /// A server whose sessions cannot write (what a standby given as the log's URL is) is refused at
    /// start, the error naming the server and the reason.
    @Test func aReadOnlyServerIsRefusedAtStart() async throws {
        try await withEventStore { owner, _ in
            var configuration = TestDatabase.configuration()
            configuration.options.additionalStartupParameters = [("default_transaction_read_only", "on")]
            try await TestDatabase.withClient(configuration: configuration) { client in
                let store = try PostgresEventStore(client: client, configuration: .init(schema: owner.configuration.schema), logger: testLogger)
                let error = await #expect(throws: KappaPostgresError.self) { try await store.migrate() }
                #expect(error?.code == .invalidConfiguration)
                #expect(error?.message.contains("read-only") == true && error?.message.contains("database") == true, "\(String(describing: error))")
            }
        }
    }

    @Test func aReaderReadsAndCannotWrite() async throws {
        try await withEventStore { owner, admin in
            let schema = owner.configuration.schema
            _ = try await owner.append(try deposits(2), to: "account-1", expectedVersion: .noStream)
            try await withLogin(granted: ["\(schema)_reader"], admin: admin) { client, _ in
                #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).events", on: client) == 2)
                let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
                #expect(try await store.readStream("account-1", from: 1, limit: 10).count == 2)
                try await eventually("the reader reads the whole log") { try await store.readLog(after: .start, limit: 10).count == 2 }
                _ = try await store.horizonHolders()
                #expect(await sqlState(of: insert(into: schema, stream: "reader-1"), on: client) == "42501")
                await #expect(throws: EventStoreError.self) {
                    try await store.append(try deposits(1), to: "reader-2", expectedVersion: .any)
                }
                #expect(await sqlState(of: "DELETE FROM \(schema).events", on: client) == "42501")
            }
            #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).events", on: admin) == 2)
        }
    }

    /// The hash chain (0006) is the server's: a writer may not name the column, its rows get the
    /// hash, and a version gap is refused to it as to anyone.
    @Test func aWriterCannotSetTheHashNorLeaveAGap() async throws {
        try await withEventStore { owner, admin in
            let schema = owner.configuration.schema
            try await withLogin(granted: ["\(schema)_writer"], admin: admin) { client, _ in
                let forged = insert(into: schema, stream: "hash-1", columns: ", event_hash", values: ", '\\x00'")
                #expect(await sqlState(of: forged, on: client) == "42501")
                #expect(await sqlState(of: insert(into: schema, stream: "hash-2"), on: client) == nil)
                let gap = insert(into: schema, stream: "hash-2").replacingOccurrences(of: "'hash-2', 1,", with: "'hash-2', 3,")
                #expect(await sqlState(of: gap, on: client) == "KP003")
                let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
                _ = try await store.append(try deposits(2), to: "hash-2", expectedVersion: .exact(1))
                let verification = try await store.verifyChains()
                #expect(verification.isIntact && verification.eventsChecked == 3)
            }
            try await withLogin(granted: ["\(schema)_reader"], admin: admin) { client, _ in
                let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
                #expect(try await store.verifyChains().eventsChecked == 3)
            }
        }
    }

    /// Even the owner, who may name every column, gets the server's transaction id and position.
    @Test func theOwnerCannotForgeTheOrderKey() async throws {
        try await withEventStore { owner, admin in
            let schema = owner.configuration.schema
            try await admin.withConnection { connection in
                let stamped = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            WITH forged AS (\(insert(into: schema, stream: "owner-1", columns: ", transaction_id", values: ", '3'")) RETURNING transaction_id)
                            SELECT count(*) FROM forged WHERE transaction_id = pg_current_xact_id()
                            """), logger: testLogger
                ).collect().first?.decode(Int64.self)
                #expect(stamped == 1)
                // Same session: its currval is defined, so the refusal is the trigger's own.
                let override = insert(into: schema, stream: "owner-2", columns: ", position", values: ", 1000000", overriding: "OVERRIDING SYSTEM VALUE")
                let error = await #expect(throws: PSQLError.self) {
                    try await connection.query(PostgresQuery(unsafeSQL: override), logger: testLogger)
                }
                #expect(error?.serverInfo?[.sqlState] == "428C9")
            }
            #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).events", on: admin) == 1)
        }
    }

    /// A migrating role without CREATEROLE cannot create the roles: the migration fails, applies
    /// nothing, and its error carries the SQL an administrator runs.
    @Test func aMigratorWithoutCreateRoleFailsWithTheSQLToRun() async throws {
        try await TestDatabase.withSchema(prefix: "kappa_test") { admin, schema in
            try await withLogin(granted: [], admin: admin) { client, role in
                try await admin.query("ALTER SCHEMA \(unescaped: schema) OWNER TO \(unescaped: role)", logger: testLogger)
                try await catalogChange(
                    PostgresQuery(unsafeSQL: "GRANT CREATE ON DATABASE \"\(TestDatabase.configuration().database ?? "postgres")\" TO \(role)"), on: admin)
                let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
                let error = await #expect(throws: KappaPostgresError.self) { try await store.migrate() }
                #expect(error?.code == .migrationFailed)
                #expect(error?.file == "0005_roles.sql")
                let sql = "CREATE ROLE \(schema)_writer NOLOGIN; CREATE ROLE \(schema)_reader NOLOGIN;"
                #expect(error?.message.contains(sql) == true, "\(String(describing: error))")
                #expect(error?.message.contains("hint: As a role with CREATEROLE, run: \(sql)") == true)
                #expect(try await scalar("SELECT count(*) FROM pg_tables WHERE schemaname = \(schema) AND tablename = 'events'", on: admin) == 0)
            }
        }
    }

    @Test func aTestSchemaTakesItsRolesWithIt() async throws {
        let schema = try await TestDatabase.withSchema(prefix: "kappa_test") { client, schema in
            try await PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger).migrate()
            #expect(try await scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE \(schema + "\\_%")", on: client) == 2)
            return schema
        }
        let left = try await TestDatabase.withClient { client in
            try await scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE \(schema + "\\_%")", on: client)
        }
        #expect(left == 0)
    }
}
