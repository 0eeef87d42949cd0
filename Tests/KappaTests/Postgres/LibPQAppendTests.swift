import Foundation
import Kappa
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

/// With `appendConnectionString`, a running store sends its appends through held libpq
/// connections: the same rows, the same typed errors, a killed connection replaced.
@Suite("Appends through libpq", .serialized)
struct LibPQAppendTests {
    /// A store on its own schema, running with libpq append connections named `application`, beside `body`.
    func withRunningStore(
        notifying: Bool = false,
        _ body: @Sendable (PostgresEventStore, PostgresClient, String) async throws -> Void
    ) async throws {
        try await TestDatabase.withSchema(prefix: "kappa_test") { client, schema in
            let application = "kappa-libpq-\(UUID().uuidString.prefix(8).lowercased())"
            var configuration = PostgresEventStore.Configuration(schema: schema)
            configuration.appendConnectionString =
                TestDatabase.connectionString(for: TestDatabase.configuration()) + " application_name='\(application)'"
            let notifier = notifying ? try LogNotifier(client: client, schema: schema, listenerCheckInterval: .zero, logger: testLogger) : nil
            let store = try PostgresEventStore(client: client, configuration: configuration, notifier: notifier, logger: testLogger)
            try await store.migrate()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await store.run() }
                defer { group.cancelAll() }
                try await eventually("the store holds its libpq connections", timeout: .seconds(10)) { store.libpqConnections.idleCount == 2 }
                try await body(store, client, application)
            }
        }
    }

    /// What an append through libpq stores is what the same append through postgres-nio stores:
    /// the same instant to the microsecond, payload, metadata, type and schema version; appends of
    /// one event and of several (binary arrays).
    @Test(arguments: [1, 3]) func libpqAppendsStoreWhatTheClientsStore(eventsAnAppend: Int) async throws {
        try await withRunningStore { store, client, _ in
            let idle = try PostgresEventStore(client: client, configuration: .init(schema: store.configuration.schema), logger: testLogger)
            let metadata = EventMetadata(correlationID: UUID(), custom: ["tenant": "t-1", "quote": #"a "b" \c"#])
            var positions: [LogPosition] = []
            for n in 1...5 {
                let recordedAt = Date(timeIntervalSince1970: 1_765_000_000.123_456_7 + Double(n) * 0.000_000_3)
                func events() -> [NewEvent] {
                    (0..<eventsAnAppend).map { i in
                        NewEvent(
                            id: UUID(), eventType: "Deposited", schemaVersion: n + i,
                            payload: Data(#"{"amount":\#(n),"note":"é \"x\" \\ {}"}"#.utf8), metadata: metadata,
                            recordedAt: recordedAt.addingTimeInterval(Double(i) * 0.000_001_7))
                    }
                }
                let version = Int64((n - 1) * eventsAnAppend)
                let viaLibPQ = try await store.append(events(), to: "libpq", expectedVersion: .exact(version))
                _ = try await idle.append(events(), to: "client", expectedVersion: .exact(version))
                #expect(viaLibPQ.streamVersion == version + Int64(eventsAnAppend))
                positions += viaLibPQ.positions
            }
            #expect(store.libpqConnections.borrows.load(ordering: .relaxed) == 5)
            let (libpq, nio) = (try await store.readStream("libpq", from: 1, limit: 100), try await store.readStream("client", from: 1, limit: 100))
            #expect(libpq.count == 5 * eventsAnAppend && nio.count == libpq.count)
            for (a, b) in zip(libpq, nio) {
                #expect(a.recordedAt == b.recordedAt)
                #expect(a.payload == b.payload)
                #expect(a.metadata == b.metadata)
                #expect(a.eventType == b.eventType && a.schemaVersion == b.schemaVersion && a.streamVersion == b.streamVersion)
            }
            // The positions an append returns are the stored events'.
            #expect(libpq.map(\.position) == positions)
        }
    }

    /// The errors of an append through libpq are those through the client, naming the stream;
    /// a repeat returns the first append's result.
    @Test func rejectionsAreTypedAsThroughTheClient() async throws {
        try await withRunningStore { store, _, _ in
            let first = try deposits(1)
            let appended = try await store.append(first, to: "account-1", expectedVersion: .noStream)
            let repeated = try await store.append(first, to: "account-1", expectedVersion: .noStream)
            #expect(repeated.wasAlreadyAppended && repeated.positions == appended.positions)
            do {
                _ = try await store.append(try deposits(1, startingAt: 2), to: "account-1", expectedVersion: .exact(5))
                Issue.record("a wrong expected version was accepted")
            } catch let error as EventStoreError {
                #expect(error.code == .versionConflict && error.stream == "account-1")
            }
            do {
                _ = try await store.append(first, to: "account-2", expectedVersion: .noStream)
                Issue.record("an event id stored in another stream was accepted")
            } catch let error as EventStoreError {
                #expect(error.code == .duplicateEventID && error.stream == "account-2")
            }
            let notJSON = NewEvent(id: UUID(), eventType: "Deposited", schemaVersion: 1, payload: Data("{not json".utf8), recordedAt: Date())
            do {
                _ = try await store.append([notJSON], to: "account-3", expectedVersion: .any)
                Issue.record("a payload that is not JSON was accepted")
            } catch let error as EventStoreError {
                #expect(error.code == .encodingFailed && error.stream == "account-3")
            }
            // A raw NUL byte is refused as through the client, not cut off where it stands.
            let withNUL = NewEvent(id: UUID(), eventType: "Deposited", schemaVersion: 1, payload: Data(#"{"a":1}"#.utf8) + [0], recordedAt: Date())
            do {
                _ = try await store.append([withNUL], to: "account-4", expectedVersion: .any)
                Issue.record("a payload with a NUL byte was accepted")
            } catch let error as EventStoreError {
                #expect(error.code == .encodingFailed && error.stream == "account-4")
            }
            #expect(store.libpqConnections.borrows.load(ordering: .relaxed) >= 6)
            #expect(try await store.readStream("account-4", from: 1, limit: 10).isEmpty)
            #expect(try await store.readStream("account-1", from: 1, limit: 10).count == 1)
            #expect(try await store.readStream("account-3", from: 1, limit: 10).isEmpty)
        }
    }

    /// Connections the server ends while idle are noticed at once and replaced: the appends after
    /// meet none of them.
    @Test func idleConnectionsTheServerKillsAreReplaced() async throws {
        try await withRunningStore { store, client, application in
            let killed = try await scalar(
                "SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity WHERE application_name = \(application)", on: client)
            #expect(killed == 2)
            try await eventually("both were replaced", timeout: .seconds(10)) {
                store.libpqConnections.holds.load(ordering: .relaxed) >= 4 && store.libpqConnections.idleCount == 2
            }
            for n in 1...10 {
                _ = try await store.append(try deposits(1, startingAt: n), to: "account-1", expectedVersion: .exact(Int64(n - 1)))
            }
            #expect(store.libpqConnections.borrows.load(ordering: .relaxed) == 10)
        }
    }

    /// An append whose connection the server ends under it fails with `connectionLost` at once,
    /// wrote nothing, and goes through when sent again.
    @Test func anAppendWhoseConnectionIsKilledFailsWithConnectionLost() async throws {
        try await withRunningStore { store, client, application in
            let schema = store.configuration.schema
            try await client.withConnection { blocker in
                try await blocker.query("BEGIN", logger: testLogger)
                let events = try deposits(1)
                do {
                    try await blocker.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(schema).events IN SHARE ROW EXCLUSIVE MODE"), logger: testLogger)
                    let append = Task { try await store.append(events, to: "account-1", expectedVersion: .noStream) }
                    try await eventually("the append waits for the lock") {
                        try await scalar("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = \(schema + ".events")::regclass", on: client) == 1
                    }
                    _ = try await scalar(
                        """
                        SELECT count(pg_terminate_backend(a.pid))::int8 FROM pg_stat_activity a
                        WHERE a.application_name = \(application) AND a.wait_event_type = 'Lock'
                        """, on: client)
                    await #expect(throws: EventStoreError.self) { _ = try await append.value }
                    do {
                        _ = try await append.value
                    } catch let error as EventStoreError {
                        #expect(error.code == .connectionLost && error.stream == "account-1")
                    }
                    try await blocker.query("ROLLBACK", logger: testLogger)
                } catch {
                    _ = try? await blocker.query("ROLLBACK", logger: testLogger)
                    throw error
                }
                #expect(try await store.readStream("account-1", from: 1, limit: 10).isEmpty)
                #expect(try await store.append(events, to: "account-1", expectedVersion: .noStream).streamVersion == 1)
            }
        }
    }

    /// An append through libpq that claims the log's notification sends it in its own transaction:
    /// every notification counted as sent arrives.
    @Test func aLibPQAppendCarriesTheNotification() async throws {
        try await withRunningStore(notifying: true) { store, client, _ in
            let notifier = try #require(store.notifier)
            try await client.withConnection { listening in
                let name = LogNotifier.listenerName(channel: notifier.channel, id: "another-process")
                try await listening.query("SELECT set_config('application_name', \(name), false)", logger: testLogger)
                let outcome: Result<Void, any Error>
                do {
                    try await listening.listen(on: notifier.channel) { notifications in
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask { try await notifier.run() }
                            defer { group.cancelAll() }
                            // The first append wakes the loop, which finds the listener; later ones carry.
                            for n in 1...1_000 where notifier.notificationsCarried == 0 {
                                _ = try await store.append(try deposits(1, startingAt: n), to: StreamID("account-\(n)"), expectedVersion: .noStream)
                                try await Task.sleep(for: .milliseconds(10))
                            }
                            #expect(notifier.notificationsCarried >= 1)
                            let expected = notifier.notificationsSent
                            let received = try await withThrowingTaskGroup(of: Int?.self) { reading in
                                reading.addTask {
                                    var count = 0
                                    for try await notification in notifications where notification.payload == notifier.id {
                                        count += 1
                                        if count >= expected { break }
                                    }
                                    return count
                                }
                                reading.addTask {
                                    try await Task.sleep(for: .seconds(10))
                                    return nil
                                }
                                defer { reading.cancelAll() }
                                return try await reading.next() ?? nil
                            }
                            #expect(received == expected, "\(expected) notifications sent, \(notifier.notificationsCarried) of them carried")
                        }
                    }
                    outcome = .success(())
                } catch {
                    outcome = .failure(error)
                }
                try await listening.query("RESET application_name", logger: testLogger)
                try outcome.get()
            }
            #expect(store.libpqConnections.borrows.load(ordering: .relaxed) >= 2)
        }
    }

    /// A follower's page read goes through an idle held connection, its cells binary, and reads what
    /// the client reads: the events, in order; after them an empty page with nothing held back.
    @Test func followersPageReadsThroughLibPQReadWhatTheClientReads() async throws {
        try await withRunningStore { store, client, _ in
            let viaClient = try PostgresEventStore(client: client, configuration: .init(schema: store.configuration.schema), logger: testLogger)
            let metadata = EventMetadata(correlationID: UUID(), custom: ["note": #"é "q" \ ✓"#])
            for n in 1...3 {
                let event = NewEvent(
                    id: UUID(), eventType: "Deposited", schemaVersion: n, payload: Data(#"{"amount":\#(n),"s":"ü\u00e9 \"q\""}"#.utf8),
                    metadata: n == 2 ? EventMetadata() : metadata, recordedAt: Date(timeIntervalSince1970: 1_765_000_000.25 + Double(n)))
                _ = try await store.append([event], to: StreamID("account-\(n % 2)"), expectedVersion: .any)
            }
            // Open transactions of other suites hold the horizon back a moment: read until all three are below it.
            func readAll(_ store: PostgresEventStore, refined: Bool) async throws -> [RecordedEvent] {
                try await eventually("the three events are below the horizon") {
                    try await store.readLogPage(after: .start, limit: 100, refined: refined).events.count >= 3
                }
                return try await store.readLogPage(after: .start, limit: 100, refined: refined).events
            }
            for refined in [false, true] {
                let before = store.libpqConnections.pageReads.load(ordering: .relaxed)
                let libpq = try await readAll(store, refined: refined)
                let reads = store.libpqConnections.pageReads.load(ordering: .relaxed)
                #expect(reads > before, "read through libpq")
                let nio = try await readAll(viaClient, refined: refined)
                try #require(libpq.count == 3)
                #expect(libpq == nio)
                // Past the last event: an empty page, nothing held back (the log's newest is below the horizon).
                let after = try await store.readLogPage(after: libpq[2].position, limit: 100, refined: refined)
                #expect(after.events.isEmpty && !after.heldBack)
                #expect(store.libpqConnections.pageReads.load(ordering: .relaxed) == reads + 1)
            }
        }
    }
}
