import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// A real projector process (`kappa-fixture-projector`) running CartSummaryProjection.
final class ProjectorProcess: Sendable {
    let process: Process
    let exit: ChildExit
    let owner: String
    let logFile: URL

    init(
        _ f: ProjectionFixture, owner: String, batchSize: Int = 50, leaseMilliseconds: Int = 1_500, delayMilliseconds: Int = 20,
        mode: String = "run", name: String = "cart_summary", readModelPort: Int? = nil
    ) throws {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [directory, directory.deletingLastPathComponent(), Bundle.main.bundleURL.deletingLastPathComponent()]
            .map { $0.appending(path: "kappa-fixture-projector") }
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: candidates.map(\.path).joined(separator: ", ")])
        }
        process = Process()
        process.executableURL = binary
        process.arguments = [
            f.store.configuration.schema, f.runtimeSchema, owner, "\(batchSize)", "\(leaseMilliseconds)", "\(delayMilliseconds)",
            mode, name,
        ]
        if let readModelPort {
            process.environment = ProcessInfo.processInfo.environment.merging(["KAPPA_FIXTURE_READ_MODEL_PORT": "\(readModelPort)"]) { $1 }
        }
        logFile = FileManager.default.temporaryDirectory.appending(path: "projector-\(owner)-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logFile)
        process.standardError = handle
        process.standardOutput = handle
        self.owner = owner
        exit = ChildExit(of: process)
        try process.run()
    }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    func killHard() async {
        signal(SIGKILL)
        await exit.wait()
    }

    func stopGracefully() async {
        signal(SIGTERM)
        await exit.wait()
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: logFile)
    }
}

@Suite("Projector processes: crashes, leases, fencing", .serialized)
struct ProjectorProcessTests {
    func applied(_ f: ProjectionFixture) async throws -> Int64 {
        try await scalar(
            PostgresQuery(unsafeSQL: "SELECT coalesce(max(events_applied), 0) FROM \(f.runtimeSchema).projections WHERE name = 'cart_summary'"), on: f.client)
    }

    func owner(_ f: ProjectionFixture) async throws -> String? {
        var owner: String?
        for try await value in try await f.client.query(
            PostgresQuery(unsafeSQL: "SELECT lease_owner FROM \(f.runtimeSchema).projections WHERE name = 'cart_summary'"), logger: testLogger
        ).decode(String?.self) {
            owner = value
        }
        return owner
    }

    /// The fixture process projects into `cart_summary_v1`, a name shared by the whole database,
    /// so these tests drop it first and compare it with a reference built in-process.
    func resetSharedSchema(_ f: ProjectionFixture) async throws {
        // The version's schema and its stable names, which an earlier test's runtime created: a runtime
        // schema of its own never adopts them.
        try await f.client.query("DROP SCHEMA IF EXISTS cart_summary_v1, cart_summary CASCADE", logger: testLogger)
        try await f.runtime([]).migrate()
    }

    func expectEqualToReference(_ f: ProjectionFixture, events: Int64, through position: LogPosition) async throws {
        let reference = CartSummaryProjection(name: f.name("ref"))
        try await f.buildReference(reference, through: position)
        #expect(try await f.difference("cart_summary_v1.carts", "\(reference.name)_v1.carts") == 0)
        #expect(try await scalar("SELECT sum(events)::int8 FROM cart_summary_v1.carts", on: f.client) == events)
    }

    @Test func aProjectorKilledMidCatchUpResumesToAnExactReadModel() async throws {
        try await withProjectionFixture { f in
            try await resetSharedSchema(f)
            let seeded = try await CartEvents.seed(f.store, carts: 100, eventsPerCart: 40)
            let first = try ProjectorProcess(f, owner: "first")
            try await eventually("the first projector is part-way through") { try await applied(f) >= 800 }
            await first.killHard()
            let atCrash = try await applied(f)
            #expect(atCrash < 4_000, "killed in the middle of the catch-up")
            // A runner that died writes nothing (its state column still says catching_up), yet once
            // its lease expires the version reads as stopped, in the SQL view and from Swift.
            try await eventually("the dead runner's version reads as stopped") {
                try await scalar(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT count(*) FROM \(f.runtimeSchema).projection_status WHERE name = 'cart_summary' AND state = 'stopped'
                            """), on: f.client) == 1
            }
            #expect(try await f.runtime([]).status().first { $0.name == "cart_summary" }?.state == .stopped)
            #expect(
                try await scalar(
                    PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).projections WHERE name = 'cart_summary' AND state = 'catching_up'"),
                    on: f.client) == 1)
            let second = try ProjectorProcess(f, owner: "second", delayMilliseconds: 0)
            try await eventually("the second projector finishes", timeout: .seconds(60)) { try await applied(f) == 4_000 }
            await second.stopGracefully()
            #expect(try await owner(f) == nil, "a graceful stop releases the lease")
            #expect(second.log.contains("took the lease"))
            try await expectEqualToReference(f, events: 4_000, through: seeded)
        }
    }

    @Test func onlyTheLeaseHolderWritesAndAPausedFormerHolderIsFenced() async throws {
        try await withProjectionFixture { f in
            try await resetSharedSchema(f)
            try await CartEvents.seed(f.store, carts: 50, eventsPerCart: 20)
            let a = try ProjectorProcess(f, owner: "a", batchSize: 50, delayMilliseconds: 100)
            let b = try ProjectorProcess(f, owner: "b", batchSize: 50, delayMilliseconds: 100)
            try await eventually("one of them holds the lease and has written") { try await applied(f) >= 100 }
            let holder = try #require(try await owner(f))
            let (active, standby) = holder == "a" ? (a, b) : (b, a)
            let writers = try await scalar("SELECT count(DISTINCT written_by) FROM cart_summary_v1.carts", on: f.client)
            #expect(writers == 1, "only the lease holder writes")
            // Pause the holder in the middle of a batch (inside its transaction, before it writes).
            try await eventually("the holder is inside a batch") {
                try await scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep% cart\\_summary %' AND state = 'active'", on: f.client) > 0
            }
            active.signal(SIGSTOP)
            let appliedWhenPaused = try await applied(f)
            try await eventually("the standby takes the lease once it expires") { try await owner(f) == standby.owner }
            // The former holder wakes up and its batch fails: the fencing token refuses its checkpoint
            // move, or, once it has been idle in its transaction for the lease's duration, the server
            // has ended its session (25P03). Either way it wrote nothing (the reference check below).
            @Sendable func refusals() -> Int {
                ["lost the lease", "runner fault"].reduce(0) { $0 + active.log.components(separatedBy: $1).count - 1 }
            }
            let refusedBefore = refusals()
            active.signal(SIGCONT)
            try await eventually("the former holder is refused") { refusals() > refusedBefore }
            try await eventually("the standby finishes", timeout: .seconds(60)) { try await applied(f) == 1_000 }
            #expect(appliedWhenPaused < 1_000)
            #expect(try await owner(f) == standby.owner)
            // Killing the holder lets the other one finish.
            let seeded = try await CartEvents.seed(f.store, carts: 10, eventsPerCart: 10)
            await standby.killHard()
            try await eventually("the other takes over after the lease expires", timeout: .seconds(60)) { try await applied(f) == 1_100 }
            #expect(try await owner(f) == active.owner)
            await active.stopGracefully()
            try await expectEqualToReference(f, events: 1_100, through: seeded)
        }
    }
}
