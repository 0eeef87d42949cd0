import Foundation
import KappaTesting
import PostgresNIO
import Testing

/// `cart-app load`, the sample's benchmark, as a real process against the test database.
@Suite("Sample app: the load benchmark", .serialized)
struct CartLoadTests {
    /// A run prints its figures and stops the service gracefully, giving the projection's lease back,
    /// so a second run right after it neither waits for the lease nor fails its first read.
    @Test func aRunGivesItsLeaseBackAndTheNextOneRunsAtOnce() async throws {
        try await TestDatabase.withSchema(prefix: "cart_load") { client, schema in
            for run in 1...2 {
                let output = FileManager.default.temporaryDirectory.appending(path: "cart-load-\(UUID().uuidString).txt")
                FileManager.default.createFile(atPath: output.path, contents: nil)
                defer { try? FileManager.default.removeItem(at: output) }
                let load = Process()
                load.executableURL = URL(fileURLWithPath: try cartApp())
                load.arguments = ["load", "--seconds", "1", "--clients", "2", "--log-schema", schema]
                let file = try FileHandle(forWritingTo: output)
                (load.standardOutput, load.standardError) = (file, file)
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
            for name in ["\(schema)_carts", "\(schema)_carts_v1", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE"))
            }
        }
    }
}
