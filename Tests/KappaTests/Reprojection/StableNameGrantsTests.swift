import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// What a reader role was granted on a projection's stable names survives every switch: the views
/// are created anew for each version, and the grants with them.
@Suite("Stable names keep their grants", .serialized)
struct StableNameGrantsTests {
    @Test func aReaderKeepsReadingAcrossPromoteAndRollback() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts"), reporter = "kappa_reporter_\(f.suffix)"
            let seeded = try await CartEvents.seed(f.store, carts: 5, eventsPerCart: 4)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let versions = try f.versions([CartSummaryProjection(name: name), CartSummaryV2Projection(name: name)])
            try await versions.rebuild(name, version: 1)   // the first version serves once built
            try await f.client.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(reporter) LOGIN PASSWORD 'reporter'"), logger: testLogger)
            try await f.client.query(PostgresQuery(unsafeSQL: "GRANT USAGE ON SCHEMA \(name) TO \(reporter)"), logger: testLogger)
            try await f.client.query(PostgresQuery(unsafeSQL: "GRANT SELECT ON \(name).carts TO \(reporter)"), logger: testLogger)
            var asReporter = TestDatabase.configuration()
            (asReporter.username, asReporter.password) = (reporter, "reporter")
            do {
                try await TestDatabase.withClient(configuration: asReporter, logger: testLogger) { client in
                    let carts = PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(name).carts")
                    #expect(try await scalar(carts, on: client) == 5)
                    try await versions.rebuild(name, version: 2)
                    try await versions.promote(name, version: 2)
                    #expect(try await versions.activeVersion(of: name) == 2)
                    #expect(try await scalar(carts, on: client) == 5, "after the promote")
                    try await versions.rollback(name)
                    #expect(try await scalar(carts, on: client) == 5, "after the rollback")
                }
            } catch {
                try? await dropRole(reporter, f.client)
                throw error
            }
            try await dropRole(reporter, f.client)
        }
    }

    private func dropRole(_ role: String, _ client: PostgresClient) async throws {
        try await client.query(PostgresQuery(unsafeSQL: "DROP OWNED BY \(role)"), logger: testLogger)
        try await client.query(PostgresQuery(unsafeSQL: "DROP ROLE \(role)"), logger: testLogger)
    }
}
