import Foundation
import KappaTesting
import PostgresNIO
import Testing

/// `cart-app load`, the sample's benchmark, as a real process against the test database.
@Suite("Sample app: the load benchmark", .serialized)
struct CartLoadTests {
    /// A run prints its figures and stops the service gracefully, giving the projection's lease back,
    /// so that a second run right after it finds the lease free (it had waited for the lease to expire,
    /// and its first read had failed).
    ///
    /// In a database of its own: the run's reads wait at most 5 s for the projection, and the
    /// transactions other suites hold open in the shared test database (long batches, rebuilds, a
    /// paused lease holder) may append to any log there, so they hold every log's horizon back.
    @Test func aRunGivesItsLeaseBackAndTheNextOneRunsAtOnce() async throws {
        try await TestDatabase.withDatabase(prefix: "cart_load") { configuration in
            try await TestDatabase.withClient(configuration: configuration) { client in
                try await twoRuns(client, database: configuration.database!, schema: "\(configuration.database!)_log")
            }
        }
    }

    private func twoRuns(_ client: PostgresClient, database: String, schema: String) async throws {
        for run in 1...2 {
            let output = FileManager.default.temporaryDirectory.appending(path: "cart-load-\(UUID().uuidString).txt")
            #expect(FileManager.default.createFile(atPath: output.path, contents: nil))
            defer { try? FileManager.default.removeItem(at: output) }
            let load = Process()
            load.executableURL = URL(fileURLWithPath: try cartApp())
            load.arguments = ["load", "--seconds", "1", "--clients", "2", "--log-schema", schema]
            let file = try FileHandle(forWritingTo: output)
            defer { try? file.close() }
            (load.standardOutput, load.standardError) = (file, file)
            load.environment = ProcessInfo.processInfo.environment.merging(["PGDATABASE": database]) { $1 }
            try load.run()
            defer { if load.isRunning { kill(load.processIdentifier, SIGKILL) } }
            try await eventually("load run \(run) ends", timeout: .seconds(120)) { !load.isRunning }
            let text = try String(contentsOf: output, encoding: .utf8)
            #expect(load.terminationStatus == 0, "run \(run): \(text)")
            #expect(text.contains("commands  open, add ×2, check out") && text.contains("reads     GET /carts/{id}?after="), "\(text)")
            var owners: [String?] = []
            for try await owner in try await client.query(PostgresQuery(unsafeSQL: "SELECT lease_owner FROM \(schema)_rt.projections")).decode(String?.self) {
                owners.append(owner)
            }
            #expect(owners == [nil], "run \(run) gave its lease back: \(owners)")
        }
    }
}
