import Foundation
import Kappa
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

/// The horizon followers read below is held back only by transactions that may still append to the
/// log: not by prepared or open transactions of other databases, nor by roles that cannot append.
/// The test cluster allows prepared transactions (`scripts/test` sets `max_prepared_transactions`).
@Suite("The log's horizon", .serialized)
struct HorizonTests {
    /// The store's head and a projection's runner (after a short hold-up, on the refined horizon)
    /// both pass an append while such transactions stay open.
    @Test func transactionsThatCannotAppendHoldNothingBack() async throws {
        try await withProjectionFixture { f in
            let (store, client) = (f.store, f.client)
            let suffix = String(UUID().uuidString.prefix(8)).lowercased()
            let database = "kappa_other_\(suffix)", gid = "kappa_other_\(suffix)", outsider = "kappa_outsider_\(suffix)"
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"), logger: testLogger)
            try await client.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(outsider) LOGIN PASSWORD 'outsider'"), logger: testLogger)
            var inOther = TestDatabase.configuration()
            inOther.database = database
            var asOutsider = TestDatabase.configuration()
            (asOutsider.username, asOutsider.password) = (outsider, "outsider")
            do {
                // A prepared transaction with a transaction id, left in another database.
                try await TestDatabase.withClient(configuration: inOther, logger: testLogger) { other in
                    try await other.withConnection { connection in
                        try await connection.query("BEGIN", logger: testLogger)
                        try await connection.query("CREATE TABLE held (x int)", logger: testLogger)
                        try await connection.query(PostgresQuery(unsafeSQL: "PREPARE TRANSACTION '\(gid)'"), logger: testLogger)
                    }
                }
                // An open transaction with a transaction id, of a role without INSERT on the log.
                try await TestDatabase.withClient(configuration: asOutsider, logger: testLogger) { other in
                    try await other.withConnection { connection in
                        try await connection.query("BEGIN", logger: testLogger)
                        try await connection.query("CREATE TEMP TABLE held (x int)", logger: testLogger)
                        let projection = EventProjection(name: f.name("seen"), version: 1, setupSQL: "CREATE TABLE seen (id uuid PRIMARY KEY)") {
                            event, context in try await context.execute("INSERT INTO \(unescaped: context.schema).seen VALUES (\(event.id))")
                        }
                        let runtime = try f.runtime([projection])
                        let position = try await store.append(try deposits(1), to: "account-1", expectedVersion: .noStream).lastPosition!
                        try await eventually("the head passes the append") { try await store.head() >= position }
                        try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: position, timeout: .seconds(20)) }
                        let holders = try await store.horizonHolders()
                        #expect(!holders.contains { $0.preparedGID == gid || $0.role == outsider || $0.database == database }, "\(holders)")
                        try await connection.query("COMMIT", logger: testLogger)
                    }
                }
            } catch {
                try? await cleanUp(client, inOther, gid: gid, database: database, role: outsider)
                throw error
            }
            try await cleanUp(client, inOther, gid: gid, database: database, role: outsider)
        }
    }

    /// A transaction that may append holds followers back — prepared in this database too — and is
    /// named, with its age, even to a role without `pg_read_all_stats`.
    @Test func aTransactionThatMayAppendHoldsItAndIsNamed() async throws {
        try await withEventStore { store, client in
            let suffix = String(UUID().uuidString.prefix(8)).lowercased()
            let gid = "kappa_here_\(suffix)", observer = "kappa_observer_\(suffix)", schema = store.configuration.schema
            try await client.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(observer) LOGIN PASSWORD 'observer'"), logger: testLogger)
            try await client.query(PostgresQuery(unsafeSQL: "GRANT USAGE ON SCHEMA \(schema) TO \(observer)"), logger: testLogger)
            try await client.query(PostgresQuery(unsafeSQL: "GRANT EXECUTE ON FUNCTION \(schema).log_horizon_holders() TO \(observer)"), logger: testLogger)
            var asObserver = TestDatabase.configuration()
            (asObserver.username, asObserver.password) = (observer, "observer")
            do {
                let open = try await TestDatabase.withClient(logger: testLogger) { other in
                    try await other.withConnection { connection in
                        try await connection.query("BEGIN", logger: testLogger)
                        let xid = try await connection.query("SELECT pg_current_xact_id()::text::int8", logger: testLogger)
                            .collect().first!.decode(Int64.self)
                        try await connection.query(PostgresQuery(unsafeSQL: "PREPARE TRANSACTION '\(gid)'"), logger: testLogger)
                        return UInt64(xid)
                    }
                }
                let position = try await store.append(try deposits(1), to: "account-1", expectedVersion: .noStream).lastPosition!
                #expect(try await store.head() < position, "held back by the prepared transaction")
                let holder = try await store.horizonHolders().first { $0.preparedGID == gid }
                #expect(
                    holder?.transactionID == open && holder?.pid == nil && holder?.role == "postgres" && holder?.ageSeconds != nil,
                    "\(String(describing: holder))")
                // Seen by a role without pg_read_all_stats, with its age.
                let ages = try await TestDatabase.withClient(configuration: asObserver, logger: testLogger) { other in
                    try await other.query(
                        PostgresQuery(unsafeSQL: "SELECT age_seconds FROM \(schema).log_horizon_holders() WHERE prepared_gid = '\(gid)'"),
                        logger: testLogger
                    ).collect().map { try $0.decode(Double?.self) }
                }
                #expect(ages.count == 1 && ages.first! != nil)
                try await client.query(PostgresQuery(unsafeSQL: "ROLLBACK PREPARED '\(gid)'"), logger: testLogger)
                try await eventually("the head passes the append once it ended") { try await store.head() >= position }
            } catch {
                _ = try? await client.query(PostgresQuery(unsafeSQL: "ROLLBACK PREPARED '\(gid)'"), logger: testLogger)
                throw error
            }
            try await dropRole(observer, on: client)
        }
    }

    /// An append transaction left open is ended by the server after the store's configured bound:
    /// it holds the horizon until then, and nothing of it is written.
    @Test func anAppendTransactionLeftOpenIsEndedAfterTheConfiguredBound() async throws {
        try await withEventStore { store, client in
            var configuration = store.configuration
            configuration.transactionIdleTimeout = .seconds(1)
            let bounded = try PostgresEventStore(client: client, configuration: configuration, logger: testLogger)
            let started = ContinuousClock.now
            let error = await #expect(throws: EventStoreError.self) {
                try await bounded.withTransaction { transaction in
                    _ = try await transaction.append(try deposits(1), to: "account-open", expectedVersion: .noStream)
                    let pid = try await transaction.connection.query("SELECT pg_backend_pid()", logger: testLogger).collect().first!.decode(Int32.self)
                    try await eventually("the open append holds the horizon (pid \(pid))", timeout: .milliseconds(900)) {
                        try await store.horizonHolders().contains { $0.pid == pid }
                    }
                    // Idle, as a client that forgot it would leave it.
                    try await eventually("the server ends the idle transaction") { try await !store.horizonHolders().contains { $0.pid == pid } }
                }
            }
            #expect(error?.code == .connectionLost, "\(String(describing: error))")
            #expect(ContinuousClock.now - started >= .seconds(1))
            #expect(try await store.readStream("account-open", from: 1, limit: 1).isEmpty)
        }
    }

    private func cleanUp(_ client: PostgresClient, _ inOther: PostgresClient.Configuration, gid: String, database: String, role: String) async throws {
        // A prepared transaction ends only in its own database.
        try? await TestDatabase.withClient(configuration: inOther, logger: testLogger) { other in
            _ = try? await other.query(PostgresQuery(unsafeSQL: "ROLLBACK PREPARED '\(gid)'"), logger: testLogger)
        }
        try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(database) WITH (FORCE)"), logger: testLogger)
        try await dropRole(role, on: client)
    }
}
