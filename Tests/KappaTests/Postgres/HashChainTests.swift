import Crypto
import Foundation
import Kappa
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

/// The log's hash chains (Migrations/log/0006_hash_chain.sql) and their verification.
@Suite("PostgreSQL log: hash chains", .serialized)
struct HashChainTests {
    /// An event with a payload whose text a parser would change (spaces, key order, a repeated key,
    /// non-ASCII), and metadata.
    static func oddEvent() -> NewEvent {
        NewEvent(
            id: UUID(), eventType: "Deposited", schemaVersion: 2, payload: Data(#"{ "z":1,  "note" : "é ✓", "z":2 }"#.utf8),
            metadata: EventMetadata(correlationID: UUID(), custom: ["who": "ünïcode"]), recordedAt: Date())
    }

    @Test(arguments: AppendPath.allCases) func everyAppendIsChainedAsDocumented(path: AppendPath) async throws {
        try await withEventStore(path) { store, client in
            // One event, then many in one call (append_event, append_events or the prepared statements), several streams.
            _ = try await store.append([Self.oddEvent()], to: "chain-a", expectedVersion: .noStream)
            _ = try await store.append(try deposits(3) + [Self.oddEvent()], to: "chain-a", expectedVersion: .exact(1))
            _ = try await store.append(try deposits(1), to: "chain-a", expectedVersion: .exact(5))
            _ = try await store.append(try deposits(4), to: "chain-b", expectedVersion: .noStream)
            try await store.withTransaction { tx in
                _ = try await tx.append(try deposits(2), to: "chain-c", expectedVersion: .noStream)
                _ = try await tx.append([Self.oddEvent()], to: "chain-b", expectedVersion: .exact(4))
            }
            let rows = try await storedChains(store, client)
            #expect(rows.count == 13)
            var previous: [UInt8]?
            for (index, row) in rows.enumerated() {
                if index > 0 && rows[index - 1].stream != row.stream { previous = nil }
                let expected = Self.documentedHash(previous: row.version == 1 ? nil : previous, row)
                #expect(row.hash == expected, "\(row.stream) v\(row.version)")
                previous = row.hash
            }
            for pageSize in [1, 2, 2_000] {
                let verification = try await store.verifyChains(pageSize: pageSize)
                #expect(verification.isIntact, "\(verification.breaks)")
                #expect(verification.eventsChecked == 13)
                #expect(verification.streamsChecked == 3)
            }
        }
    }

    @Test func anEditedEventIsNamed() async throws {
        try await withEventStore { store, client in
            _ = try await store.append(try deposits(4), to: "edited-1", expectedVersion: .noStream)
            _ = try await store.append(try deposits(3), to: "edited-2", expectedVersion: .noStream)
            let schema = store.configuration.schema
            try await asOwnerPastTheGuard(
                schema, client, #"UPDATE \#(schema).events SET payload = '{"cents": 1000000}' WHERE stream_id = 'edited-1' AND stream_version = 2"#)
            let edited = try #require(try await store.readStream("edited-1", from: 2, limit: 1).first)
            for pageSize in [1, 3, 2_000] {
                let verification = try await store.verifyChains(pageSize: pageSize)
                #expect(verification.breakCount == 1)
                #expect(verification.eventsChecked == 7 && verification.streamsChecked == 2)
                let found = try #require(verification.firstBreak)
                #expect(found.stream == "edited-1" && found.version == 2 && found.reason == .contentChanged)
                #expect(found.position == edited.position && found.eventID == edited.id)
                #expect(found.description.contains("stream 'edited-1' version 2"), "\(found)")
            }
            // One stream: the other holds; this one names the same event.
            #expect(try await store.verifyChains(stream: "edited-2").isIntact)
            #expect(try await store.verifyChains(stream: "edited-2").eventsChecked == 3)
            #expect(try await store.verifyChains(stream: "edited-1", pageSize: 1).breaks.map(\.version) == [2])
            #expect(try await store.verifyChains(stream: "nothing-here").eventsChecked == 0)

            // Rewriting the edited event's hash too moves the break to the next event, which was
            // chained to the old hash.
            try await asOwnerPastTheGuard(
                schema, client,
                """
                UPDATE \(schema).events e SET event_hash = \(schema).events_chain_hash(
                    (SELECT p.event_hash FROM \(schema).events p WHERE p.stream_id = e.stream_id AND p.stream_version = 1), e)
                WHERE stream_id = 'edited-1' AND stream_version = 2
                """)
            let rehashed = try await store.verifyChains()
            #expect(rehashed.breaks.map { "\($0.stream) v\($0.version) \($0.reason)" } == ["edited-1 v3 contentChanged"])
        }
    }

    @Test func aDeletedEventIsNamedByTheNext() async throws {
        try await withEventStore { store, client in
            _ = try await store.append(try deposits(3), to: "deleted-1", expectedVersion: .noStream)
            _ = try await store.append(try deposits(2), to: "deleted-2", expectedVersion: .noStream)
            _ = try await store.append(try deposits(2), to: "deleted-3", expectedVersion: .noStream)
            let schema = store.configuration.schema
            try await asOwnerPastTheGuard(
                schema, client,
                """
                DELETE FROM \(schema).events WHERE (stream_id, stream_version) IN (('deleted-1', 2), ('deleted-3', 1))
                """)
            let next = try #require(try await store.readStream("deleted-1", from: 3, limit: 1).first)
            let verification = try await store.verifyChains(pageSize: 2)
            #expect(
                verification.breaks.map { "\($0.stream) v\($0.version) \($0.reason)" }
                    == ["deleted-1 v3 predecessorMissing", "deleted-3 v2 predecessorMissing"])
            #expect(verification.firstBreak?.position == next.position)
            #expect(verification.firstBreak?.explanation.contains("version 2") == true)
            #expect(verification.eventsChecked == 5)
            #expect(try await store.verifyChains(stream: "deleted-2").isIntact)
            #expect(try await store.verifyChains(stream: "deleted-3").firstBreak?.version == 2)
        }
    }

    /// Even the owner, who may name the column, gets the server's hash; and no role can leave a gap.
    @Test func aClientHashIsOverwrittenAndAGapIsRefused() async throws {
        try await withEventStore { store, client in
            let schema = store.configuration.schema
            let stored = try await client.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(schema).events (event_id, stream_id, stream_version, event_type, schema_version, payload, recorded_at, event_hash)
                        VALUES ('\(UUID())', 'owner-1', 1, 'Deposited', 1, '{}', now(), '\\x00') RETURNING octet_length(event_hash)
                        """), logger: testLogger
            ).collect().first?.decode(Int32.self)
            #expect(stored == 32)
            #expect(try await store.verifyChains().isIntact)
            let error = await #expect(throws: PSQLError.self) {
                _ = try await client.query(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO \(schema).events (event_id, stream_id, stream_version, event_type, schema_version, payload, recorded_at)
                            VALUES ('\(UUID())', 'owner-1', 3, 'Deposited', 1, '{}', now())
                            """), logger: testLogger
                ).collect()
            }
            #expect(error?.sqlState == .kappaStreamVersionGap)
            #expect(error?.serverInfo?[.message]?.contains("stream owner-1 has no version 2") == true, "\(String(describing: error?.serverInfo?[.message]))")
            #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).events", on: client) == 1)
        }
    }

    /// A log written before the chains (migrated to 0005) gets them from the migration, and appends
    /// after it chain on from them.
    @Test func theMigrationChainsAnExistingLog() async throws {
        try await TestDatabase.withSchema(prefix: "kappa_test") { client, schema in
            let before = Array(Migration.eventLog.prefix { $0.version < 6 })
            #expect(before.last?.name == "0005_roles.sql")
            try await Migrator(client: client, schema: schema, logger: testLogger).migrate(before)
            let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
            _ = try await store.append([Self.oddEvent()] + (try deposits(2)), to: "old-1", expectedVersion: .noStream)
            _ = try await store.append(try deposits(1), to: "old-2", expectedVersion: .noStream)
            _ = try await store.append([Self.oddEvent()], to: "old-1", expectedVersion: .exact(3))
            let verifyBefore = await #expect(throws: EventStoreError.self) { try await store.verifyChains() }
            #expect(verifyBefore?.message.contains("no hash chains yet") == true, "\(String(describing: verifyBefore))")

            #expect(try await store.migrate().map(\.name).first == "0006_hash_chain.sql")
            let rows = try await storedChains(store, client)
            var previous: [UInt8]?
            for row in rows where row.stream == "old-1" {
                #expect(row.hash == Self.documentedHash(previous: previous, row))
                previous = row.hash
            }
            _ = try await store.append(try deposits(2), to: "old-1", expectedVersion: .exact(4))
            _ = try await store.append(try deposits(1), to: "old-2", expectedVersion: .exact(1))
            let verification = try await store.verifyChains()
            #expect(verification.isIntact, "\(verification.breaks)")
            #expect(verification.eventsChecked == 8 && verification.streamsChecked == 2)
        }
    }

    /// The backfill cannot chain across a gap, so such a log is refused, naming the stream.
    @Test func aLogWithAGapIsRefusedByTheMigration() async throws {
        try await TestDatabase.withSchema(prefix: "kappa_test") { client, schema in
            try await Migrator(client: client, schema: schema, logger: testLogger).migrate(Array(Migration.eventLog.prefix { $0.version < 6 }))
            _ = try await client.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(schema).events (event_id, stream_id, stream_version, event_type, schema_version, payload, recorded_at)
                        VALUES ('\(UUID())', 'gap-1', 1, 'Deposited', 1, '{}', now()), ('\(UUID())', 'gap-1', 3, 'Deposited', 1, '{}', now())
                        """), logger: testLogger
            ).collect()
            let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
            let error = await #expect(throws: KappaPostgresError.self) { try await store.migrate() }
            #expect(error?.file == "0006_hash_chain.sql")
            #expect(error?.message.contains("stream gap-1 has version 3 after version 1") == true, "\(String(describing: error))")
            let columns = try await scalar(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = '\(unescaped: schema).events'::regclass AND attname = 'event_hash'", on: client)
            #expect(columns == 0)
        }
    }

    // MARK: - Helpers

    /// Runs `sql` as the log's owner with the refusing trigger disabled around it, in one statement.
    func asOwnerPastTheGuard(_ schema: String, _ client: PostgresClient, _ sql: String) async throws {
        _ = try await client.query(
            PostgresQuery(
                unsafeSQL: """
                    DO $tamper$ BEGIN
                        ALTER TABLE \(schema).events DISABLE TRIGGER events_refuse_update_delete;
                        \(sql);
                        ALTER TABLE \(schema).events ENABLE TRIGGER events_refuse_update_delete;
                    END $tamper$
                    """), logger: testLogger
        ).collect()
    }

    struct StoredRow: Sendable {
        let stream: String, version: Int64, id: UUID, type: String, schemaVersion: Int32, microseconds: Int64
        let payload: String, metadata: String, hash: [UInt8]
    }

    /// Every stored event in (stream, version) order, read in SQL's own text forms: `recorded_at` as
    /// microseconds since 2000 by `extract` (exact: numeric), the json as its text.
    func storedChains(_ store: PostgresEventStore, _ client: PostgresClient) async throws -> [StoredRow] {
        let schema = store.configuration.schema
        var rows: [StoredRow] = []
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT stream_id, stream_version, event_id, event_type, schema_version,
                       (extract(epoch FROM recorded_at) * 1000000)::int8 - 946684800000000, payload::text, metadata::text, event_hash
                FROM \(schema).events ORDER BY stream_id, stream_version
                """)
        for try await (stream, version, id, type, schemaVersion, microseconds, payload, metadata, hash) in try await client.query(query, logger: testLogger)
            .decode((String, Int64, UUID, String, Int32, Int64, String, String, ByteBuffer).self)
        {
            rows.append(
                StoredRow(
                    stream: stream, version: version, id: id, type: type, schemaVersion: schemaVersion, microseconds: microseconds,
                    payload: payload, metadata: metadata, hash: Array(hash.readableBytesView)))
        }
        return rows
    }

    /// The hash as the migration's comment documents it, written here apart from the library's.
    static func documentedHash(previous: [UInt8]?, _ row: StoredRow) -> [UInt8] {
        var bytes: [UInt8] = []
        func bigEndian<I: FixedWidthInteger>(_ value: I) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
        bigEndian(row.version)
        bytes += previous ?? []
        withUnsafeBytes(of: row.id.uuid) { bytes += $0 }
        bigEndian(row.schemaVersion)
        bigEndian(row.microseconds)
        for text in [row.stream, row.type, row.payload, row.metadata] {
            bigEndian(Int32(text.utf8.count))
            bytes += Array(text.utf8)
        }
        return Array(SHA256.hash(data: bytes))
    }
}
