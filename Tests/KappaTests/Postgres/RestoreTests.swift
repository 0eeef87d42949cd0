import Foundation
import Kappa
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

/// A log backed up with pg_dump and restored into another cluster, whose transaction counter is far
/// behind the one the log was written on, keeps its order: the way the log's guide (TheLog.md) says to back up and
/// restore, on two real clusters.
@Suite("The log's order across backup and restore", .serialized)
struct RestoreTests {
    @Test func aLogRestoredIntoAnotherClusterKeepsItsOrder() async throws {
        try await withEventStore { store, client in
            let schema = store.configuration.schema
            // A server that has run a while: 2,000 transaction ids spent, so the log's ids lie far
            // beyond the new cluster's.
            try await client.query("DO $spend$ BEGIN FOR i IN 1..2000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $spend$", logger: testLogger)
            var last = LogPosition.start
            for round in 0..<100 { // 100 transactions of 10 events
                last = try await store.append(try deposits(10, startingAt: round * 10 + 1), to: try StreamID("account-\(round % 7)"), expectedVersion: .any)
                    .lastPosition!
            }
            // Where a follower of the old server stood once it had read everything: the last event
            // (once the transactions of other tests that held the horizon back have ended).
            let head = last
            try await eventually("the horizon passes the appends", timeout: .seconds(30)) { try await store.head() >= head }
            let dump = FileManager.default.temporaryDirectory.appending(path: "kappa-\(schema).dump").path
            let roles = FileManager.default.temporaryDirectory.appending(path: "kappa-\(schema)-roles.sql").path
            defer {
                try? FileManager.default.removeItem(atPath: dump)
                try? FileManager.default.removeItem(atPath: roles)
            }
            try await pgTool(try postgresProgram("pg_dumpall"), ["--roles-only", "--file", roles])
            try await pgTool(try postgresProgram("pg_dump"), ["--format", "custom", "--schema", schema, "--file", dump])

            try await ThrowAwayCluster.with { cluster in
                try await pgTool(try postgresProgram("psql"), ["--quiet", "--file", roles], environment: cluster.environment)
                // Two copies, in two databases of the new cluster: the repair is tried once by
                // concurrent repairs, once by a writer's append.
                for database in ["copy_a", "copy_b"] {
                    try await pgTool(try postgresProgram("createdb"), [database], environment: cluster.environment)
                    try await pgTool(try postgresProgram("pg_restore"), ["--exit-on-error", "--dbname", database, dump], environment: cluster.environment)
                }
                try await concurrentRepairs(cluster.configuration(database: "copy_a"), schema: schema, head: head)
                try await aWritersAppendRepairs(cluster.configuration(database: "copy_b"), schema: schema, head: head)
            }
        }
    }

    /// Before the repair, the fault is there and appends are refused; two processes repair at once,
    /// and the order is repaired once; then the whole history reads first, and new events after it.
    private func concurrentRepairs(_ configuration: PostgresClient.Configuration, schema: String, head: LogPosition) async throws {
        try await TestDatabase.withClient(configuration: configuration, logger: testLogger) { client in
            let next = try await scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8", on: client)
            #expect(Int64(head.transactionID) >= next, "the new cluster's counter (\(next)) is behind the log's (\(head.transactionID))")
            let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
            #expect(try await store.readLog(after: .start, limit: 2_000).count < 1_000, "unrepaired, restored events lie beyond the horizon")
            let refused = await #expect(throws: EventStoreError.self) {
                try await store.withTransaction { try await $0.append(try deposits(1), to: "account-new", expectedVersion: .noStream) }
            }
            #expect(refused?.code == .orderNeedsRepair, "\(String(describing: refused))")
            #expect(try await store.readStream("account-new", from: 1, limit: 10).isEmpty)

            try await TestDatabase.withClient(configuration: configuration, logger: testLogger) { other in
                let second = try PostgresEventStore(client: other, configuration: .init(schema: schema), logger: testLogger)
                async let first = store.repairOrder()
                async let again = second.repairOrder()
                let shifts = try await [first, again].sorted()
                #expect(shifts[0] == 0 && shifts[1] > 0, "repaired once: \(shifts)")
            }
            try await store.migrate() // finds nothing left to repair
            try await expectInOrder(store, head: head, inOneTransaction: true)
        }
    }

    /// A writer (not the owner) appends without a migration: the append repairs and goes through.
    private func aWritersAppendRepairs(_ configuration: PostgresClient.Configuration, schema: String, head: LogPosition) async throws {
        let login = "kappa_restored_writer" // goes with the throw-away cluster
        try await TestDatabase.withClient(configuration: configuration, logger: testLogger) { admin in
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(login) LOGIN IN ROLE \(schema)_writer"), logger: testLogger)
            var asWriter = configuration
            asWriter.username = login
            try await TestDatabase.withClient(configuration: asWriter, logger: testLogger) { client in
                let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
                try await expectInOrder(store, head: head)
            }
        }
    }

    /// Appends 10 events: a follower at `head` reads exactly them; a new reader reads the 1,000
    /// restored events first, then them. `inOneTransaction`: as two appends in one transaction, whose
    /// second sees the first's events, with an id at or past its snapshot's xmax in a quiet cluster.
    private func expectInOrder(_ store: PostgresEventStore, head: LogPosition, inOneTransaction: Bool = false) async throws {
        if inOneTransaction {
            try await store.withTransaction { transaction in
                _ = try await transaction.append(try deposits(5), to: "account-new", expectedVersion: .noStream)
                _ = try await transaction.append(try deposits(5, startingAt: 6), to: "account-new", expectedVersion: .exact(5))
            }
        } else {
            _ = try await store.append(try deposits(10), to: "account-new", expectedVersion: .noStream)
        }
        try await eventually("a new reader reads the whole log") { try await store.readLog(after: .start, limit: 2_000).count == 1_010 }
        let fresh = try await store.readLog(after: .start, limit: 2_000)
        #expect(fresh.prefix(1_000).allSatisfy { $0.streamID != "account-new" } && fresh.suffix(10).allSatisfy { $0.streamID == "account-new" })
        let followed = try await store.readLog(after: head, limit: 2_000)
        // A live follower's read, below the cheaper horizon written out in its statement, shifts as `log_xid()` does.
        // (Awaited: an open transaction anywhere on the server holds that horizon back a moment.)
        try await eventually("a live read from the old checkpoint reads the new events") {
            try await store.readLogPage(after: head, limit: 2_000, refined: false).events.map(\.id) == followed.map(\.id)
        }
        #expect(
            followed.map(\.id) == Array(fresh.suffix(10)).map(\.id),
            "a follower from its old checkpoint (\(head)) reads the new events: \(followed.count), first \(followed.first.map { "\($0.position)" } ?? "-"), new from \(fresh.suffix(10).first.map { "\($0.position)" } ?? "-")"
        )
    }
}
