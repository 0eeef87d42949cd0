import Foundation
import Kappa
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

@Suite("PostgreSQL log: append and read", .serialized)
struct AppendTests {
    @Test(arguments: AppendPath.allCases) func expectedVersionsAreEnforced(path: AppendPath) async throws {
        try await withEventStore(path) { store, client in
            let stream: StreamID = "account-1"
            let value1 = try await store.append(try deposits(2), to: stream, expectedVersion: .noStream).streamVersion
            #expect(value1 == 2)
            let value2 = try await store.append(try deposits(1), to: stream, expectedVersion: .exact(2)).streamVersion
            #expect(value2 == 3)
            let value3 = try await store.append(try deposits(1), to: stream, expectedVersion: .streamExists).streamVersion
            #expect(value3 == 4)
            let value4 = try await store.append(try deposits(1), to: stream, expectedVersion: .any).streamVersion
            #expect(value4 == 5)
            for expected in [ExpectedVersion.noStream, .exact(4), .exact(6), .exact(0)] {
                let error = await #expect(throws: EventStoreError.self) {
                    try await store.append(try deposits(1), to: stream, expectedVersion: expected)
                }
                #expect(error?.code == .versionConflict)
                #expect(error?.stream == "account-1")
                #expect(error?.actualVersion == 5)
            }
            let missing = await #expect(throws: EventStoreError.self) {
                try await store.append(try deposits(1), to: "account-2", expectedVersion: .streamExists)
            }
            #expect(missing?.code == .versionConflict)
            let value5 = try await store.append(try deposits(1), to: "account-2", expectedVersion: .exact(0)).streamVersion
            #expect(value5 == 1)
            let value6 = try await scalar("SELECT count(*) FROM \(unescaped: store.configuration.schema).events", on: client)
            #expect(value6 == 6)
        }
    }

    @Test(arguments: AppendPath.allCases) func theSameEventsAppendedTwiceAreStoredOnce(path: AppendPath) async throws {
        try await withEventStore(path) { store, client in
            let events = try deposits(3)
            let first = try await store.append(events, to: "account-1", expectedVersion: .noStream)
            // Re-sent with the same expected version (a client retrying after a lost reply) and with `.any`.
            let again = try await store.append(events, to: "account-1", expectedVersion: .noStream)
            let againAny = try await store.append(events, to: "account-1", expectedVersion: .any)
            #expect(!first.wasAlreadyAppended)
            #expect(again.wasAlreadyAppended && againAny.wasAlreadyAppended)
            #expect(again.positions == first.positions && againAny.positions == first.positions)
            #expect(again.streamVersion == 3)
            let value7 = try await scalar("SELECT count(*) FROM \(unescaped: store.configuration.schema).events", on: client)
            #expect(value7 == 3)
        }
    }

    @Test(arguments: AppendPath.allCases) func aPartlyRepeatedAppendWritesNothing(path: AppendPath) async throws {
        try await withEventStore(path) { store, client in
            let events = try deposits(2)
            _ = try await store.append(events, to: "account-1", expectedVersion: .noStream)
            let error = await #expect(throws: EventStoreError.self) {
                try await store.append([events[1]] + deposits(1), to: "account-1", expectedVersion: .any)
            }
            #expect(error?.code == .duplicateEventID)
            let elsewhere = await #expect(throws: EventStoreError.self) {
                try await store.append(events, to: "account-2", expectedVersion: .any)
            }
            #expect(elsewhere?.code == .duplicateEventID)
            let value8 = try await scalar("SELECT count(*) FROM \(unescaped: store.configuration.schema).events", on: client)
            #expect(value8 == 2)
        }
    }

    /// Prepared appends name their statement by schema (the driver caches statements per connection
    /// by name): stores on two schemas sharing one client's connections must each write their own log.
    @Test func storesOnTwoSchemasSharingConnectionsEachWriteTheirOwnLog() async throws {
        try await withEventStore { first, client in
            for prepared in [true, false] {
                let schema = "\(first.configuration.schema)_\(prepared ? "p" : "f")"
                try await client.query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE", logger: testLogger)
                var configuration = PostgresEventStore.Configuration(schema: schema)
                configuration.preparedStatements = prepared
                let second = try PostgresEventStore(client: client, configuration: configuration, logger: testLogger)
                try await second.migrate()
                // Interleaved, many at once, so both stores' appends run on the same pooled connections.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for n in 0..<40 {
                        group.addTask {
                            let store = n % 2 == 0 ? first : second
                            _ = try await store.append(try deposits(n % 3 + 1), to: StreamID("account-\(prepared)-\(n)"), expectedVersion: .noStream)
                        }
                    }
                    try await group.waitForAll()
                }
                for (store, parity) in [(first, 0), (second, 1)] {
                    let streams = try await scalar(
                        "SELECT count(DISTINCT stream_id) FROM \(unescaped: store.configuration.schema).events WHERE stream_id LIKE \("account-\(prepared)-%")",
                        on: client)
                    #expect(streams == 20)
                    let wrong = try await scalar(
                        """
                        SELECT count(*) FROM \(unescaped: store.configuration.schema).events
                        WHERE stream_id LIKE \("account-\(prepared)-%") AND split_part(stream_id, '-', 3)::int % 2 <> \(parity)
                        """, on: client)
                    #expect(wrong == 0)
                }
                try await client.query("DROP SCHEMA \(unescaped: schema) CASCADE", logger: testLogger)
            }
        }
    }

    @Test func theLogRefusesUpdateDeleteAndTruncate() async throws {
        try await withEventStore { store, client in
            _ = try await store.append(try deposits(2), to: "account-1", expectedVersion: .noStream)
            let events = "\(store.configuration.schema).events"
            for statement in [
                "UPDATE \(events) SET payload = '{}'", "DELETE FROM \(events)", "TRUNCATE \(events)",
                "UPDATE \(events) SET stream_version = stream_version + 10 WHERE stream_version = 1",
            ] {
                let error = await #expect(throws: PSQLError.self) {
                    try await client.query(PostgresQuery(unsafeSQL: statement), logger: testLogger)
                }
                #expect(error?.sqlState == .kappaLogIsAppendOnly, "\(statement)")
            }
            let value9 = try await scalar("SELECT count(*) FROM \(unescaped: events)", on: client)
            #expect(value9 == 2)
        }
    }

    @Test func badPayloadsAreRefusedWithNothingWritten() async throws {
        try await withEventStore { store, client in
            let good = try deposits(1)[0]
            var notJSON = good
            notJSON.id = UUID()
            notJSON.payload = Data("{not json".utf8)
            var notUTF8 = good
            notUTF8.id = UUID()
            notUTF8.payload = Data([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D]) // {"a":"\xFF"}
            var rawNUL = good
            rawNUL.id = UUID()
            rawNUL.payload = Data(#"{"a":"_"}"#.utf8.map { $0 == 0x5F ? 0 : $0 })
            // JSON that PostgreSQL's json stores but jsonb, SQL on payloads or the decoders cannot read.
            let unreadable = [#"{"a":"\u0000"}"#, #"{"a":"x\uD800"}"#, #"{"a":"\udc00y"}"#, #"{"a":"\ud800\u0041"}"#].map { text in
                var event = good
                event.id = UUID()
                event.payload = Data(text.utf8)
                return event
            }
            var nulInMetadata = good
            nulInMetadata.id = UUID()
            nulInMetadata.metadata = EventMetadata(custom: ["note": "a\u{0}b"])
            for bad in [notJSON, notUTF8, rawNUL, nulInMetadata] + unreadable {
                let error = await #expect(throws: EventStoreError.self) {
                    try await store.append([good, bad], to: "account-1", expectedVersion: .any)
                }
                #expect(error?.code == .encodingFailed)
                #expect(error?.stream == "account-1")
                #expect(error.map { "\($0)".contains(bad.id.uuidString) || "\($0)".contains("PostgreSQL refused") } == true, "\(String(describing: error))")
            }
            // Escapes that are fine: a surrogate pair, an escaped backslash before `u0000`.
            var fine = good
            fine.id = UUID()
            fine.payload = Data(#"{"a":"\ud83d\ude00 \\u0000 \\\"\\uD800"}"#.utf8)
            _ = try await store.append([fine], to: "account-2", expectedVersion: .noStream)
            #expect(try await store.readStream("account-2", from: 1, limit: 1).first?.payload == fine.payload)
            let empty = await #expect(throws: EventStoreError.self) { try await store.append([], to: "account-1", expectedVersion: .any) }
            #expect(empty?.code == .invalidArgument)
            let value10 = try await scalar("SELECT count(*) FROM \(unescaped: store.configuration.schema).events WHERE stream_id = 'account-1'", on: client)
            #expect(value10 == 0)
        }
    }

    @Test func readsAStreamForwardFromAVersionInBatches() async throws {
        try await withEventStore { store, _ in
            _ = try await store.append(try deposits(25), to: "account-1", expectedVersion: .noStream)
            _ = try await store.append(try deposits(3), to: "account-2", expectedVersion: .noStream)
            var batches: [[Int64]] = []
            for try await batch in store.streamEvents("account-1", from: 6, batchSize: 10) {
                batches.append(batch.map(\.streamVersion))
            }
            #expect(batches == [Array(6...15), Array(16...25)])
            // Other tests' open transactions on this server may hold the horizon back for a moment:
            // follow the log until all 28 are handed out.
            var log: [RecordedEvent] = []
            for try await batch in store.followLog(after: .start, batchSize: 7, pollInterval: .milliseconds(5)) {
                #expect(batch.count <= 7)
                log += batch
                if log.count >= 28 { break }
            }
            try #require(log.count == 28)
            #expect(log.map(\.position) == log.map(\.position).sorted())
            let tail = try await store.readLog(after: log[20].position, limit: 100)
            #expect(tail.map(\.id) == log[21...].map(\.id))
        }
    }

    @Test func storedVersion1EventsAreReadBackAsVersion2() async throws {
        try await withEventStore { store, _ in
            let old = NewEvent(
                id: UUID(), eventType: "MoneyDeposited", schemaVersion: 1,
                payload: Data(#"{"amount":"3.25"}"#.utf8), recordedAt: Date())
            let metadata = EventMetadata(correlationID: UUID(), causationID: UUID(), custom: ["userId": "u-7"])
            let new = try AccountEvent.registry.encode(.opened(.init(owner: "ada")), id: UUID(), recordedAt: Date(), metadata: metadata)
            _ = try await store.append([new, old], to: "account-1", expectedVersion: .noStream)
            let stored = try await store.readStream("account-1", from: 1, limit: 10)
            let decoded = try stored.compactMap { try AccountEvent.registry.decode($0) }
            #expect(decoded.map(\.event) == [.opened(.init(owner: "ada")), .deposited(MoneyDeposited(cents: 325))])
            #expect(decoded[0].metadata == metadata)
            #expect(decoded[1].storedSchemaVersion == 1)
            #expect(stored.map(\.id) == [new.id, old.id])
            #expect(abs(stored[0].recordedAt.timeIntervalSince(new.recordedAt)) < 0.001)
        }
    }

    @Test func anUnknownStoredTypeNamesStreamAndPosition() async throws {
        try await withEventStore { store, _ in
            let odd = NewEvent(id: UUID(), eventType: "AccountFrozen", schemaVersion: 1, payload: Data("{}".utf8), recordedAt: Date())
            let result = try await store.append([odd], to: "account-9", expectedVersion: .noStream)
            let stored = try await store.readStream("account-9", from: 1, limit: 10)
            let error = #expect(throws: EventStoreError.self) { try AccountEvent.registry.decode(stored[0]) }
            #expect(error?.code == .unknownEventType)
            #expect(error?.stream == "account-9")
            #expect(error?.position == result.positions[0])
        }
    }

    @Test func aMissingSchemaIsAClearError() async throws {
        try await TestDatabase.withClient { client in
            let store = try PostgresEventStore(client: client, configuration: .init(schema: "kappa_never_migrated"), logger: testLogger)
            let error = await #expect(throws: EventStoreError.self) { try await store.readLog(after: .start, limit: 1) }
            #expect(error?.message.contains("migrate") == true)
        }
        #expect(throws: KappaPostgresError.self) {
            try PostgresEventStore(
                client: PostgresClient(configuration: TestDatabase.configuration()),
                configuration: .init(schema: "Bad-Name"), logger: testLogger)
        }
    }
}
