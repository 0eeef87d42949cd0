import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaCLI

/// Runs `kappa-fixture-cli` (an application embedding `ProjectionsCommand`) to the end.
func runCLI(_ arguments: [String], projection: String) async throws -> (status: Int32, out: String, err: String) {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [directory, directory.deletingLastPathComponent(), Bundle.main.bundleURL.deletingLastPathComponent()]
        .map { $0.appending(path: "kappa-fixture-cli") }
    guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: candidates.map(\.path).joined(separator: ", ")])
    }
    let out = FileManager.default.temporaryDirectory.appending(path: "cli-\(UUID().uuidString).out")
    let err = FileManager.default.temporaryDirectory.appending(path: "cli-\(UUID().uuidString).err")
    for file in [out, err] { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
    defer { for file in [out, err] { try? FileManager.default.removeItem(at: file) } }
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(["KAPPA_FIXTURE_PROJECTION": projection]) { $1 }
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    let exit = ChildExit(of: process)
    try process.run()
    await exit.wait()
    return (process.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
}

@Suite("The projections command group", .serialized)
struct ProjectionsCommandTests {
    @Test func helpExplainsTheCommandsAndTheirConfiguration() async throws {
        let help = try await runCLI(["projections", "--help"], projection: "unused")
        #expect(help.status == 0)
        for word in ["status", "rebuild", "compare", "promote", "rollback", "drop", "KAPPA_DATABASE_URL"] {
            #expect(help.out.contains(word), "\(word) missing from: \(help.out)")
        }
        let rebuild = try await runCLI(["projections", "rebuild", "--help"], projection: "unused")
        for word in [
            "--version", "--resume", "--promote", "--workers", "--batch-size", "KAPPA_LOG_SCHEMA", "default kappa_projections",
            "--read-model-database-url", "KAPPA_READ_MODEL_DATABASE_URL",
        ] {
            #expect(rebuild.out.contains(word), "\(word) missing from: \(rebuild.out)")
        }
        let bad = try await runCLI(["projections", "rebuild", "carts", "--version", "2", "--workers", "0"], projection: "unused")
        #expect(bad.status != 0)
        #expect(bad.err.contains("--workers must be at least 1"))
    }

    @Test func aWholeMigrationFromTheCommandLine() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let seeded = try await CartEvents.seed(f.store, carts: 40, eventsPerCart: 25)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let common = ["--log-schema", f.store.configuration.schema, "--runtime-schema", f.runtimeSchema]
            func cli(_ arguments: String...) async throws -> (status: Int32, out: String, err: String) {
                try await runCLI(["projections"] + arguments + common, projection: name)
            }
            let v1 = try await cli("rebuild", name, "--version", "1")
            #expect(v1.status == 0, "\(v1.err)")
            #expect(v1.out.contains("\(name) v1 caught up at \(seeded)"), "\(v1.out)")
            // Not a terminal: progress as plain lines.
            #expect(v1.err.contains("\(name) v1: 1000/1000 events (100%)"), "\(v1.err)")
            let v2 = try await cli("rebuild", name, "--version", "2", "--workers", "3", "--batch-size", "100")
            #expect(v2.status == 0, "\(v2.err)")
            #expect(v2.err.contains("3 partitions"), "\(v2.err)")
            let compare = try await cli("compare", name, "--old", "1", "--new", "2", "--ignore", "written_by", "version")
            #expect(compare.status == 0, "\(compare.out)\(compare.err)")
            #expect(compare.out.contains("carts: 40 rows in v1, 40 in v2; equal on 5 shared columns; new columns: items_added"), "\(compare.out)")
            #expect(compare.out.contains("new tables: product_sales"))
            let promote = try await cli("promote", name, "--version", "2")
            #expect(promote.status == 0, "\(promote.err)")
            let status = try await cli("status", name)
            #expect(status.out.contains("retired") && status.out.contains("active"), "\(status.out)")
            let rollback = try await cli("rollback", name)
            #expect(rollback.out.contains("v1 is active again"), "\(rollback.out)\(rollback.err)")
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT version::int8 FROM \(name).about"), on: f.client) == 1)
            #expect(try await cli("promote", name, "--version", "2").status == 0)
            #expect(try await cli("drop", name, "--version", "1").status == 0)
            // A refusal: a clear message, exit status 1, nothing changed.
            let refused = try await cli("drop", name, "--version", "2")
            #expect(refused.status == 1)
            #expect(refused.err.contains("error: ProjectionError.versionIsActive"), "\(refused.err)")
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT version::int8 FROM \(name).about"), on: f.client) == 2)
            let badURL = try await cli("status", "--database-url", "mysql://nope")
            #expect(badURL.status != 0 && badURL.err.contains("postgres://USER"), "\(badURL.err)")
        }
    }

    @Test func theProgressBarFitsTheTerminalAndShowsRateAndETA() {
        let progress = RebuildProgress(
            projection: "cart_summary", version: 2, eventsDone: 520_000, eventsTotal: 1_000_000,
            eventsThisRun: 500_000, elapsed: .seconds(2), partitions: 2)
        let report = ProgressBar.report(progress)
        let bar = ProgressBar.bar(report, width: 100)
        #expect(bar.count <= 100)
        #expect(bar.hasPrefix("cart_summary v2 [####"))
        #expect(bar.contains(" 52%  520,000/1,000,000 events  250,000/s  ETA 0:01"), "\(bar)")
        #expect(ProgressBar.bar(report, width: 30).count < 30) // narrow: no bar, still no wrap
        #expect(ProgressBar.line(report) == "cart_summary v2: 520000/1000000 events (52%), 250000 events/s, 2 partitions, ETA 0:01")
        #expect(ProgressBar.eta(.seconds(3_725)) == "1:02:05")
        #expect(ProgressBar.eta(nil) == "--:--")
        // Any work: the rate is done / elapsed unless given.
        let seed = ProgressBar.Report(label: "seed", done: 3_000, total: 10_000, unit: "carts", elapsed: .seconds(3))
        #expect(ProgressBar.line(seed) == "seed: 3000/10000 carts (30%), 1000 carts/s, ETA 0:07")
    }
}
