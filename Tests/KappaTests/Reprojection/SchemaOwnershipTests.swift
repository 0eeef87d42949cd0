import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// A projection version owns only the schemas Kappa created for it: a schema that exists before the
/// version is set up (a log's, an application's) is refused, never adopted — so a later drop, a
/// switch or a rebuild from scratch cannot remove what it holds.
@Suite("Schema ownership", .serialized)
struct SchemaOwnershipTests {
    @Test func aNameWhoseVersionSchemaIsTheLogsOrTheRuntimesIsRefused() async throws {
        try await withProjectionFixture { f in
            let name = f.name("orders")
            var configuration = f.configuration()
            configuration.schema = "\(name)_v3"
            let error = #expect(throws: KappaPostgresError.self) {
                try f.runtime([CartSummaryProjection(name: name)], configuration: configuration)
            }
            #expect(error?.code == .invalidIdentifier)
            #expect(error?.description.contains("\(name)_v3") == true, "\(String(describing: error))")
            #expect(throws: KappaPostgresError.self) {
                try ProjectionVersions(
                    log: f.store, readModels: f.client, projections: [CartSummaryProjection(name: name)],
                    configuration: configuration, logger: testLogger)
            }
        }
    }

    @Test func anExistingVersionSchemaIsRefusedAndLeftAsItWas() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            try await f.client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(name)_v1"), logger: testLogger)
            try await f.client.query(PostgresQuery(unsafeSQL: "CREATE TABLE \(name)_v1.precious AS SELECT 42::int8 AS answer"), logger: testLogger)
            let error = await #expect(throws: ProjectionError.self) { try await f.runtime([CartSummaryProjection(name: name)]).run() }
            #expect(error?.code == .schemaNotOwned)
            #expect(error?.description.contains("\(name)_v1") == true, "\(String(describing: error))")
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT answer FROM \(name)_v1.precious"), on: f.client) == 42)
            #expect(try await f.versions([]).versions(of: name).isEmpty)
        }
    }

    @Test func anExistingStableNamesSchemaIsRefusedAndLeftAsItWas() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            try await f.client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(name)"), logger: testLogger)
            try await f.client.query(PostgresQuery(unsafeSQL: "CREATE TABLE \(name).precious AS SELECT 42::int8 AS answer"), logger: testLogger)
            let error = await #expect(throws: ProjectionError.self) { try await f.runtime([CartSummaryProjection(name: name)]).run() }
            #expect(error?.code == .schemaNotOwned)
            #expect(error?.description.contains("schema \(name),") == true, "\(String(describing: error))")
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT answer FROM \(name).precious"), on: f.client) == 42)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM pg_namespace WHERE nspname = '\(name)_v1'"), on: f.client) == 0)
        }
    }
}
