import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// The log on one server, the read models (and the runtime's tables) on another: a second, real
/// cluster. Catch-up, live following woken by the log's server, connections killed on both servers,
/// status and lag, and a migration by replay (rebuild, compare, promote, roll back) — with every
/// event applied exactly once.
@Suite("Read models on another server", .serialized)
struct RemoteReadModelTests {
    @Test func aReadModelOnAnotherServerCatchesUpFollowsAndMigratesExactlyOnce() async throws {
        try await withProjectionFixture { f in
            try await ThrowAwayCluster.with { cluster in
                let application = "kappa_remote_\(f.suffix)"
                var logConfiguration = TestDatabase.configuration()
                logConfiguration.options.additionalStartupParameters = [("application_name", application)]
                try await TestDatabase.withClient(configuration: logConfiguration, logger: testLogger) { logClient in
                    try await TestDatabase.withClient(configuration: cluster.configuration(), logger: testLogger) { readModels in
                        do {
                            try await exercise(f, log: logClient, application: application, readModels: readModels, server: cluster.configuration())
                        } catch {
                            // PSQLError's description hides the server's message: record all of it.
                            Issue.record("\(String(reflecting: error))")
                        }
                    }
                }
            }
        }
    }

    private func exercise(
        _ f: ProjectionFixture, log logClient: PostgresClient, application: String, readModels: PostgresClient, server: PostgresClient.Configuration
    ) async throws {
        let log = try PostgresEventStore(client: logClient, configuration: f.store.configuration, logger: testLogger)
        let name = f.name("remote")
        let v1 = CartSummaryProjection(name: name, version: 1, writer: "v1")
        let v2 = CartSummaryProjection(name: name, version: 2, writer: "v2")
        let seeded = try await CartEvents.seed(f.store, carts: 30, eventsPerCart: 8)
        var configuration = f.configuration()
        configuration.pipelineConnectionString = TestDatabase.connectionString(for: server)
        let runtime = try ProjectionRuntime(
            log: log, readModels: readModels, projections: [v1], notifier: f.notifier, configuration: configuration, logger: testLogger)
        var versionsConfiguration = f.configuration(owner: "versions")
        versionsConfiguration.pipelineConnectionString = configuration.pipelineConnectionString
        let versions = try ProjectionVersions(
            log: log, readModels: readModels, projections: [v1, v2], configuration: versionsConfiguration, logger: testLogger)
        let last = try await withRunning(runtime) {
            var last = seeded
            var killed = (readModels: Int64(0), log: Int64(0))
            try await runtime.waitUntil(name, hasPassed: last, timeout: .seconds(60))
            // The stable names point at the first version once it has caught up and been promoted.
            try await eventually("v1 serves") { try await versions.activeVersion(of: name) == 1 }
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \"\(name)\".carts"), on: readModels) == 30)
            let onLogServer = try await scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE \("\(name)%")", on: f.client)
            #expect(onLogServer == 0, "the read model is on the read-model server only")

            // Live, woken by the log's server, while the runtime's connections are killed on each server.
            for round in 0..<12 {
                last =
                    try await f.store.append([CartEvents.added(cart: 100 + round)], to: StreamID("cart-\(100 + round)"), expectedVersion: .any)
                    .lastPosition ?? last
                if round % 4 == 1 {
                    killed.readModels += try await scalar(
                        "SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
                        on: readModels, retrying: false)
                } else if round % 4 == 3 {
                    killed.log += try await scalar(
                        "SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity WHERE application_name = \(application)", on: f.client,
                        retrying: false)
                }
                try await runtime.waitUntil(name, hasPassed: last, timeout: .seconds(30))
            }
            #expect(killed.readModels > 0 && killed.log > 0, "\(killed)")
            // Status and lag need both servers: the checkpoint from one, the log's head from the other.
            try await eventually("v1 is live with no lag") {
                let status = try await runtime.status().first { $0.name == name }
                return status?.state == .live && status?.lagEvents == 0
            }

            // A migration by replay on the read-model server.
            try await versions.rebuild(name, version: 2)
            let comparison = try await versions.compare(name, old: 1, new: 2, ignoring: ["written_by", "version"]) // `about` holds the version on purpose
            #expect(comparison.samePosition && comparison.differingRows == 0, "\(comparison)")
            try await versions.promote(name, version: 2)
            #expect(try await versions.activeVersion(of: name) == 2)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT version::int8 FROM \"\(name)\".about"), on: readModels) == 2)
            #expect(try await versions.rollback(name) == 1)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT version::int8 FROM \"\(name)\".about"), on: readModels) == 1)
            return last
        }

        // Exactly once: the remote read model equals one built in a single uninterrupted run on the log's server.
        let reference = CartSummaryProjection(name: f.name("reference"))
        try await f.buildReference(reference, through: last)
        let remote = try await rows(PostgresQuery(unsafeSQL: "SELECT cart_id, items, total_cents, checked_out, events FROM \"\(name)\".carts"), readModels)
        let local = try await rows(
            PostgresQuery(unsafeSQL: "SELECT cart_id, items, total_cents, checked_out, events FROM \"\(reference.name)\".carts"), f.client)
        #expect(remote.count == 42 && remote == local)
    }

    /// The `projections` commands with `--read-model-database-url`: the log from the PG* variables'
    /// server, the versions on the other.
    @Test func theCommandLineMigratesAReadModelOnAnotherServer() async throws {
        try await withProjectionFixture { f in
            let name = f.name("cli_remote")
            let seeded = try await CartEvents.seed(f.store, carts: 20, eventsPerCart: 10)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            try await ThrowAwayCluster.with { cluster in
                let url = "postgres://postgres@127.0.0.1:\(cluster.port)/postgres"
                let common = ["--log-schema", f.store.configuration.schema, "--runtime-schema", f.runtimeSchema, "--read-model-database-url", url]
                func cli(_ arguments: String...) async throws -> (status: Int32, out: String, err: String) {
                    try await runCLI(["projections"] + arguments + common, projection: name)
                }
                for version in ["1", "2"] {
                    let rebuilt = try await cli("rebuild", name, "--version", version)
                    #expect(rebuilt.status == 0 && rebuilt.out.contains("\(name) v\(version) caught up at \(seeded)"), "\(rebuilt.out)\(rebuilt.err)")
                }
                let compare = try await cli("compare", name, "--old", "1", "--new", "2", "--ignore", "written_by", "version")
                #expect(compare.status == 0, "\(compare.out)\(compare.err)")
                #expect(try await cli("promote", name, "--version", "2").status == 0)
                let status = try await cli("status", name)
                #expect(status.out.contains("retired") && status.out.contains("active"), "\(status.out)")
                let (version, carts) = try await TestDatabase.withClient(configuration: cluster.configuration(), logger: testLogger) { readModels in
                    let version = try await scalar(PostgresQuery(unsafeSQL: "SELECT version::int8 FROM \"\(name)\".about"), on: readModels)
                    return (version, try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \"\(name)\".carts"), on: readModels))
                }
                #expect(version == 2 && carts == 20)
                let onLogServer = try await scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE \("\(name)%")", on: f.client)
                #expect(onLogServer == 0, "nothing of the read model on the log's server")
            }
        }
    }

    /// A projector process whose read models are on the other server, SIGKILLed mid-catch-up; a
    /// second one finishes from the checkpoint the first committed there, and every event is applied once.
    @Test func aProjectorWithRemoteReadModelsKilledMidCatchUpResumesExactly() async throws {
        try await withProjectionFixture { f in
            let seeded = try await CartEvents.seed(f.store, carts: 60, eventsPerCart: 40)
            try await ThrowAwayCluster.with { cluster in
                try await TestDatabase.withClient(configuration: cluster.configuration(), logger: testLogger) { readModels in
                    let applied = PostgresQuery(
                        unsafeSQL: "SELECT coalesce(max(events_applied), 0) FROM \(f.runtimeSchema).projections WHERE name = 'cart_summary'")
                    let first = try ProjectorProcess(f, owner: "first", readModelPort: cluster.port)
                    try await eventually("the first projector is part-way through", timeout: .seconds(60)) {
                        (try? await scalar(applied, on: readModels)) ?? 0 >= 600
                    }
                    await first.killHard()
                    #expect(try await scalar(applied, on: readModels) < 2_400, "killed in the middle of the catch-up")
                    let second = try ProjectorProcess(f, owner: "second", delayMilliseconds: 0, readModelPort: cluster.port)
                    try await eventually("the second projector finishes", timeout: .seconds(60)) { try await scalar(applied, on: readModels) == 2_400 }
                    await second.stopGracefully()
                    let reference = CartSummaryProjection(name: f.name("reference"))
                    try await f.buildReference(reference, through: seeded)
                    let columns = "cart_id, items, total_cents, checked_out, events"
                    let remote = try await rows(PostgresQuery(unsafeSQL: "SELECT \(columns) FROM cart_summary_v1.carts"), readModels)
                    let local = try await rows(PostgresQuery(unsafeSQL: "SELECT \(columns) FROM \"\(reference.name)_v1\".carts"), f.client)
                    #expect(remote.count == 60 && remote == local, "the remote read model differs from the reference")
                }
            }
        }
    }

    /// Read models split across servers by projection: one runtime keeps its projection beside the
    /// log, another puts its own on the second server; both follow the same log live.
    @Test func projectionsOfOneLogSplitAcrossTwoServers() async throws {
        try await withProjectionFixture { f in
            try await ThrowAwayCluster.with { cluster in
                try await TestDatabase.withClient(configuration: cluster.configuration(), logger: testLogger) { readModels in
                    let here = CartSummaryProjection(name: f.name("here")), there = CartSummaryProjection(name: f.name("there"))
                    let local = try f.runtime([here])
                    var configuration = f.configuration()
                    configuration.pipelineConnectionString = TestDatabase.connectionString(for: cluster.configuration())
                    let remote = try ProjectionRuntime(
                        log: f.store, readModels: readModels, projections: [there], notifier: f.notifier, configuration: configuration,
                        logger: testLogger)
                    try await withRunning(local) {
                        try await withRunning(remote) {
                            for cart in 0..<5 {
                                let position = try await f.store.append([CartEvents.added(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .any)
                                    .lastPosition!
                                try await local.waitUntil(here.name, hasPassed: position, timeout: .seconds(30))
                                try await remote.waitUntil(there.name, hasPassed: position, timeout: .seconds(30))
                            }
                        }
                    }
                    let query = "SELECT count(*) FROM pg_namespace WHERE nspname = "
                    #expect(try await scalar(PostgresQuery(unsafeSQL: "\(query)'\(here.name)_v1'"), on: f.client) == 1)
                    #expect(try await scalar(PostgresQuery(unsafeSQL: "\(query)'\(there.name)_v1'"), on: f.client) == 0)
                    #expect(try await scalar(PostgresQuery(unsafeSQL: "\(query)'\(there.name)_v1'"), on: readModels) == 1)
                    #expect(try await scalar(PostgresQuery(unsafeSQL: "\(query)'\(here.name)_v1'"), on: readModels) == 0)
                    let columns = "cart_id, items, total_cents, checked_out, events"
                    let onLog = try await rows(PostgresQuery(unsafeSQL: "SELECT \(columns) FROM \"\(here.name)_v1\".carts"), f.client)
                    let onOther = try await rows(PostgresQuery(unsafeSQL: "SELECT \(columns) FROM \"\(there.name)_v1\".carts"), readModels)
                    #expect(onLog.count == 5 && onLog == onOther)
                }
            }
        }
    }

    /// A runtime whose read models (or runtime schema) point at the log's schema is refused at start,
    /// naming the schema and the server, before it creates anything there.
    @Test func aRuntimeSchemaThatHoldsTheLogIsRefusedAtStart() async throws {
        try await withProjectionFixture { f in
            var configuration = f.configuration()
            configuration.schema = f.store.configuration.schema
            let runtime = try f.runtime([CartSummaryProjection(name: f.name("misplaced"))], configuration: configuration)
            // `run()` migrates first; `migrate()` alone, so that a check that did not throw fails rather than runs on.
            let error = await #expect(throws: KappaPostgresError.self) { try await runtime.migrate() }
            #expect(error?.code == .invalidConfiguration)
            #expect(
                error?.message.contains("'\(f.store.configuration.schema)'") == true && error?.message.contains("holds an event log") == true,
                "\(String(describing: error))")
            #expect(
                try await scalar(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = \(f.store.configuration.schema) AND tablename = 'projections'", on: f.client) == 0)
            // A schema of the application's own with a table named `events` is no log: the runtime may live there.
            let own = f.name("app")
            try await f.client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(own)"), logger: testLogger)
            try await f.client.query(PostgresQuery(unsafeSQL: "CREATE TABLE \(own).events (id int)"), logger: testLogger)
            configuration.schema = own
            try await f.runtime([], configuration: configuration).migrate()
            try await f.runtime([], configuration: configuration).migrate() // and again, with its migrations recorded there
            let cli = try await runCLI(
                ["projections", "status", "--log-schema", f.store.configuration.schema, "--runtime-schema", f.store.configuration.schema], projection: "x")
            #expect(cli.status == 1 && cli.err.contains("holds an event log"), "\(cli.err)")
        }
    }

    private func rows(_ query: PostgresQuery, _ client: PostgresClient) async throws -> Set<String> {
        var rows = Set<String>()
        for try await (cart, items, total, checkedOut, events) in try await client.query(query, logger: testLogger).decode(
            (String, Int32, Int64, Bool, Int64).self)
        {
            rows.insert("\(cart) \(items) \(total) \(checkedOut) \(events)")
        }
        return rows
    }
}
