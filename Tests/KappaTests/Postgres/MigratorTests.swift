import Foundation
import Kappa
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

@Suite("Migrator", .serialized)
struct MigratorTests {
    /// A folder of migration files, removed afterwards.
    func withFiles<R>(_ files: [String: String], _ body: (URL) async throws -> R) async throws -> R {
        let directory = FileManager.default.temporaryDirectory.appending(path: "kappa-migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, sql) in files { try sql.write(to: directory.appending(path: name), atomically: true, encoding: .utf8) }
        return try await body(directory)
    }

    let files = [
        "0001_accounts.sql": "CREATE TABLE accounts (id int PRIMARY KEY);\nINSERT INTO accounts VALUES (1);",
        "0002_owners.sql": "CREATE TABLE owners (id int PRIMARY KEY); CREATE FUNCTION two() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;",
    ]

    @Test func appliesInOrderOnceAndRecordsEachFile() async throws {
        try await withFiles(files) { directory in
            try await TestDatabase.withSchema { client, schema in
                let migrator = try Migrator(client: client, schema: schema, logger: testLogger)
                let first = try await migrator.migrate(try Migration.load(directory: directory))
                #expect(first.map(\.name) == ["0001_accounts.sql", "0002_owners.sql"])
                let second = try await migrator.migrate(try Migration.load(directory: directory))
                #expect(second.isEmpty)
                #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).kappa_migrations", on: client) == 2)
                #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).accounts", on: client) == 1)
            }
        }
    }

    /// A migration whose connection is killed under it (`pg_terminate_backend`) fails and leaves
    /// nothing applied. (The run is guarded like the runtime's transactions, because a ROLLBACK written
    /// to a connection that has just closed can hang postgres-nio; that race does not show here on
    /// demand — the test passed with the unguarded `PostgresClient.withTransaction` too.)
    @Test func aMigrationWhoseConnectionIsKilledFailsAndAppliesNothing() async throws {
        let slow = ["0001_slow.sql": "CREATE TABLE slow (id int); SELECT pg_sleep(60);"]
        try await withFiles(slow) { directory in
            try await TestDatabase.withSchema { client, schema in
                let migrator = try Migrator(client: client, schema: schema, logger: testLogger)
                let migrations = try Migration.load(directory: directory)
                let ended = Locked(false)
                let run = Task {
                    defer { ended.withLock { $0 = true } }
                    return try await migrator.migrate(migrations)
                }
                try await eventually("the migration is sleeping", timeout: .seconds(20)) {
                    try await scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%kappa_run_script%'", on: client) >= 1
                }
                let killed = try await scalar(
                    """
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE wait_event = 'PgSleep' AND query LIKE '%kappa_run_script%'
                    """, on: client, retrying: false)
                #expect(killed >= 1)
                // Not awaited directly: a run that hangs must fail the test, not hang it.
                try await eventually("the killed migration ended", timeout: .seconds(20)) { ended.withLock { $0 } }
                let error = await #expect(throws: KappaPostgresError.self) { try await run.value }
                #expect(error?.code == .migrationFailed)
                #expect(try await scalar("SELECT count(*) FROM pg_tables WHERE schemaname = \(schema) AND tablename = 'slow'", on: client) == 0)
            }
        }
    }

    /// Killed outside any file (waiting for the migration lock another process holds): still a
    /// ``KappaPostgresError``, not the driver's or an internal error a caller cannot match.
    @Test func aMigrationKilledWhileWaitingForTheLockIsATypedError() async throws {
        try await withFiles(files) { directory in
            try await TestDatabase.withSchema { client, schema in
                let migrator = try Migrator(client: client, schema: schema, logger: testLogger)
                let migrations = try Migration.load(directory: directory)
                try await client.withConnection { holder in
                    try await holder.query("SELECT pg_advisory_lock(hashtext('kappa.migrate.' || \(schema)))", logger: testLogger)
                    var holderPID: Int32 = 0
                    for try await pid in try await holder.query("SELECT pg_backend_pid()", logger: testLogger).decode(Int32.self) { holderPID = pid }
                    let ended = Locked(false)
                    let run = Task {
                        defer { ended.withLock { $0 = true } }
                        return try await migrator.migrate(migrations)
                    }
                    // Only the backend this holder blocks: other suites' migrations run beside this one.
                    let waiting = "SELECT pid FROM pg_stat_activity WHERE \(holderPID) = ANY(pg_blocking_pids(pid))"
                    try await eventually("the migration waits for the lock", timeout: .seconds(20)) {
                        try await scalar("SELECT count(*) FROM (\(unescaped: waiting)) w", on: client) >= 1
                    }
                    #expect(try await scalar("SELECT count(pg_terminate_backend(pid)) FROM (\(unescaped: waiting)) w", on: client, retrying: false) >= 1)
                    try await eventually("the killed migration ended", timeout: .seconds(20)) { ended.withLock { $0 } }
                    let error = await #expect(throws: KappaPostgresError.self) { try await run.value }
                    #expect(error?.code == .migrationFailed)
                    #expect(error?.message.contains(schema) == true)
                    try await holder.query("SELECT pg_advisory_unlock_all()", logger: testLogger)
                }
            }
        }
    }

    @Test func twoRacingMigratorsApplyEachFileOnce() async throws {
        try await withFiles(files) { directory in
            let migrations = try Migration.load(directory: directory)
            try await TestDatabase.withSchema { client, schema in
                // Two clients: two processes' worth of connections, racing for the advisory lock.
                try await TestDatabase.withClient { other in
                    async let a = Migrator(client: client, schema: schema, logger: testLogger).migrate(migrations)
                    async let b = Migrator(client: other, schema: schema, logger: testLogger).migrate(migrations)
                    let (appliedA, appliedB) = try await (a, b)
                    // One of them did all the work, the other found nothing left to do.
                    #expect(Set([appliedA.count, appliedB.count]) == [0, 2])
                }
                #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).kappa_migrations", on: client) == 2)
                #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).accounts", on: client) == 1)
            }
        }
    }

    /// Two runs racing on a schema that does not exist yet (a runtime's, at its first start), each on a
    /// connection that has already looked the schema up (as the runtime's start-up check does), so its
    /// catalogue cache says "no such schema": the one that waited for the lock must not fail on
    /// creating the schema again.
    @Test func racingMigratorsOfANewSchemaBothSucceed() async throws {
        let configuration = {
            var configuration = TestDatabase.configuration()
            configuration.options.maximumConnections = 1 // the lookup and the migration on one connection
            return configuration
        }()
        try await TestDatabase.withClient(configuration: configuration, logger: testLogger) { client in
            try await TestDatabase.withClient(configuration: configuration, logger: testLogger) { other in
                for _ in 0..<10 {
                    let schema = "kappa_new_\(UUID().uuidString.prefix(8).lowercased())"
                    let lookup = PostgresQuery(unsafeSQL: "SELECT to_regclass('\(schema).kappa_migrations') IS NULL")
                    async let a: [Migration] = {
                        try await client.query(lookup, logger: testLogger)
                        return try await Migrator(client: client, schema: schema, logger: testLogger).migrate(Migration.projectionRuntime)
                    }()
                    async let b: [Migration] = {
                        try await other.query(lookup, logger: testLogger)
                        return try await Migrator(client: other, schema: schema, logger: testLogger).migrate(Migration.projectionRuntime)
                    }()
                    let (appliedA, appliedB) = try await (a, b)
                    #expect(appliedA.count + appliedB.count == Migration.projectionRuntime.count)
                    try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: testLogger)
                }
            }
        }
    }

    @Test func theEventLogMigrationRacesSafely() async throws {
        try await TestDatabase.withSchema { client, schema in
            try await TestDatabase.withClient { other in
                async let c = PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger).migrate()
                async let d = PostgresEventStore(client: other, configuration: .init(schema: schema), logger: testLogger).migrate()
                let (appliedC, appliedD) = try await (c, d)
                #expect(appliedC.count + appliedD.count == Migration.eventLog.count)
            }
            #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).kappa_migrations", on: client) == Int64(Migration.eventLog.count))
        }
    }

    @Test func anEditedAppliedFileIsRefusedByName() async throws {
        try await withFiles(files) { directory in
            try await TestDatabase.withSchema { client, schema in
                let migrator = try Migrator(client: client, schema: schema, logger: testLogger)
                try await migrator.migrate(try Migration.load(directory: directory))
                try "CREATE TABLE owners (id bigint PRIMARY KEY);".write(
                    to: directory.appending(path: "0002_owners.sql"), atomically: true, encoding: .utf8)
                let error = await #expect(throws: KappaPostgresError.self) {
                    try await migrator.migrate(try Migration.load(directory: directory))
                }
                #expect(error?.code == .migrationChecksumMismatch)
                #expect(error?.file == "0002_owners.sql")
                #expect(error?.description.contains("0002_owners.sql") == true)
            }
        }
    }

    @Test func aFailingFileLeavesNothingBehindAndIsNamed() async throws {
        try await withFiles(["0001_ok.sql": "CREATE TABLE fine (id int);", "0002_broken.sql": "CREATE TABLE broken (id nosuchtype);"]) { directory in
            try await TestDatabase.withSchema { client, schema in
                let error = await #expect(throws: KappaPostgresError.self) {
                    try await Migrator(client: client, schema: schema, logger: testLogger).migrate(try Migration.load(directory: directory))
                }
                #expect(error?.code == .migrationFailed)
                #expect(error?.file == "0002_broken.sql")
                #expect(error?.message.contains(#"type "nosuchtype" does not exist"#) == true, "\(String(describing: error))")
                #expect(error?.underlying != nil)
                let tables = try await scalar("SELECT count(*) FROM pg_tables WHERE schemaname = \(schema)", on: client)
                #expect(tables == 0)
            }
        }
    }

    @Test func badFileNamesAndSchemaNamesAreRefused() async throws {
        #expect(throws: KappaPostgresError.self) { try Migration(name: "create_tables.sql", sql: "") }
        #expect(throws: KappaPostgresError.self) { try Migration(name: "0001.sql", sql: "") }
        #expect(throws: KappaPostgresError.self) {
            try Migration.ordered([Migration(name: "0001_a.sql", sql: ""), Migration(name: "0001_b.sql", sql: "")])
        }
        try await TestDatabase.withClient { client in
            for bad in ["Kappa", "kappa; drop", "", "a\"b", String(repeating: "k", count: 64)] {
                let error = #expect(throws: KappaPostgresError.self) { try Migrator(client: client, schema: bad, logger: testLogger) }
                #expect(error?.code == .invalidIdentifier)
            }
        }
    }

    /// A log written while payloads were `jsonb` (before 0003): its events read back as they were
    /// handed out before (jsonb's text form), and both append paths write `json` byte for byte after.
    @Test func aLogFromBeforeJSONPayloadsKeepsItsEventsAndAppendsAfter() async throws {
        try await TestDatabase.withSchema(prefix: "kappa_test") { client, schema in
            let before = Array(Migration.eventLog.prefix { $0.version < 3 })
            #expect(before.count == 2)
            try await Migrator(client: client, schema: schema, logger: testLogger).migrate(before)
            let correlation = UUID()
            try await client.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(schema).events (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)
                        VALUES ('\(UUID())', 'old-1', 1, 'Deposited', 1, '{"b": 1,  "a":"x"}', '{"correlationId":"\(correlation)"}', now()),
                               ('\(UUID())', 'old-1', 2, 'Deposited', 1, '{"c":[1, 2]}', '{}', now())
                        """), logger: testLogger)
            for prepared in [true, false] {
                var configuration = PostgresEventStore.Configuration(schema: schema)
                configuration.preparedStatements = prepared
                let store = try PostgresEventStore(client: client, configuration: configuration, logger: testLogger)
                try await store.migrate()
                let old = try await store.readStream("old-1", from: 1, limit: 10)
                #expect(old.map { String(decoding: $0.payload, as: UTF8.self) } == [#"{"a": "x", "b": 1}"#, #"{"c": [1, 2]}"#])
                #expect(old.map(\.metadata.correlationID) == [correlation, nil])
                let payload = Data(#"{ "z":1, "a" : "\ud83d\ude00", "a":2 }"#.utf8)
                let stream = try StreamID("new-\(prepared)")
                let events = (0..<3).map { _ in NewEvent(id: UUID(), eventType: "Deposited", schemaVersion: 1, payload: payload, recordedAt: Date()) }
                _ = try await store.append(Array(events.prefix(1)), to: stream, expectedVersion: .noStream)
                _ = try await store.append(Array(events.dropFirst()), to: stream, expectedVersion: .exact(1))
                #expect(try await store.readStream(stream, from: 1, limit: 10).map(\.payload) == [payload, payload, payload])
            }
            let types = try await client.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT string_agg(atttypid::regtype::text, ',' ORDER BY attname) FROM pg_attribute
                        WHERE attrelid = '\(schema).events'::regclass AND attname IN ('payload', 'metadata')
                        """), logger: testLogger
            ).collect().first?.decode(String.self)
            #expect(types == "json,json")
        }
    }

    @Test func theEventLogMigrationIsEmbedded() {
        #expect(Migration.eventLog.map(\.name).first == "0001_event_log.sql")
        #expect(Migration.eventLog.first?.sql.contains("CREATE TABLE events") == true)
    }
}
