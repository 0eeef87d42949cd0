import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// What others were given on a projection's stable names survives every switch: the grants on its
/// views, the projection's own reader role, and views of their own built on a stable name.
@Suite("Stable names keep their grants", .serialized)
struct StableNameGrantsTests {
    @Test func aReaderKeepsReadingAcrossPromoteAndRollback() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts"), reporter = "kappa_reporter_\(f.suffix)"
            let seeded = try await CartEvents.seed(f.store, carts: 5, eventsPerCart: 4)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let versions = try f.versions([CartSummaryProjection(name: name), CartSummaryV2Projection(name: name)])
            try await versions.rebuild(name, version: 1) // the first version serves once built
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
                try? await dropRole(reporter, on: f.client)
                throw error
            }
            try await dropRole(reporter, on: f.client)
        }
    }

    /// A login granted only `<projection>_reader` reads every stable name of every version it is
    /// switched to, without a grant of its own.
    @Test func theProjectionsReaderRoleReadsEveryVersion() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let seeded = try await CartEvents.seed(f.store, carts: 3, eventsPerCart: 4)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let versions = try f.versions([CartSummaryProjection(name: name), CartSummaryV2Projection(name: name)])
            try await versions.rebuild(name, version: 1)
            try await withLogin(granted: ["\(name)_reader"], admin: f.client) { reader, _ in
                let carts = PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(name).carts")
                #expect(try await scalar(carts, on: reader) == 3)
                try await versions.rebuild(name, version: 2)
                try await versions.promote(name, version: 2)
                #expect(try await scalar(carts, on: reader) == 3, "after the promote")
                #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(name).product_sales"), on: reader) > 0, "a view v2 added")
                try await versions.rollback(name)
                #expect(try await scalar(carts, on: reader) == 3, "after the rollback")
            }
            try await dropRole("\(name)_reader", on: f.client)
        }
    }

    /// A view of the user's over a stable name stays through a switch that keeps the stable name's
    /// columns (v2 adds one after them); a switch that would drop a column it may use is refused,
    /// naming it, and changes nothing.
    @Test func aUsersViewOverAStableNameStaysOrTheSwitchIsRefused() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts"), report = "report_\(f.suffix)"
            let seeded = try await CartEvents.seed(f.store, carts: 3, eventsPerCart: 4)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let versions = try f.versions([CartSummaryProjection(name: name), CartSummaryV2Projection(name: name)])
            try await versions.rebuild(name, version: 1)
            try await f.client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(report)"), logger: testLogger)
            try await f.client.query(
                PostgresQuery(unsafeSQL: "CREATE VIEW \(report).totals AS SELECT cart_id, total_cents FROM \(name).carts"), logger: testLogger)
            let totals = PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(report).totals")
            try await versions.rebuild(name, version: 2)
            try await versions.promote(name, version: 2)
            #expect(try await scalar(totals, on: f.client) == 3, "the user's view reads v2")
            let written = PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(name).carts WHERE items_added >= 0")
            #expect(try await scalar(written, on: f.client) == 3, "the stable name has v2's new column")
            let refusal = await #expect(throws: ProjectionError.self) { try await versions.rollback(name) }
            #expect(refusal?.code == .dependentObjects)
            #expect(refusal?.message.contains("\(report).totals") == true, "names the dependent view: \(refusal?.message ?? "")")
            #expect(try await versions.activeVersion(of: name) == 2, "the refused rollback changed nothing")
            #expect(try await scalar(totals, on: f.client) == 3)
            try await f.client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(report) CASCADE"), logger: testLogger)
            try await versions.rollback(name)
            #expect(try await versions.activeVersion(of: name) == 1)
        }
    }
}
