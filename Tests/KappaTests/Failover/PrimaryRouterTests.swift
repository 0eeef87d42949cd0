import Foundation
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// The router against the test server: queries pass through it unchanged, and a host that refuses
/// connections is passed over for the next.
@Suite("Primary router")
struct PrimaryRouterTests {
    @Test func queriesPassThroughToTheFirstHostThatAcceptsWrites() async throws {
        let configuration = TestDatabase.configuration()
        let server = PrimaryRouter.Host(host: configuration.host ?? "localhost", port: configuration.port ?? 5432)
        // A port nobody listens on, first: refused, so the test server is the primary.
        let router = try await PrimaryRouter.start(
            hosts: [.init(host: "127.0.0.1", port: 1), server], username: configuration.username, password: configuration.password,
            database: configuration.database, logger: testLogger)
        let client = PostgresClient(configuration: router.clientConfiguration(configuration), backgroundLogger: testLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            group.addTask { try await router.run() }
            defer { group.cancelAll() }
            // Several connections at once, and a result larger than a socket buffer.
            try await withThrowingTaskGroup(of: Int64.self) { queries in
                for _ in 0..<8 {
                    queries.addTask {
                        try await scalar("SELECT sum(length(repeat('x', n)))::int8 FROM generate_series(1, 2000) n", on: client)
                    }
                }
                for try await sum in queries { #expect(sum == 2_001_000) }
            }
            #expect(try await scalar("SELECT CASE WHEN pg_is_in_recovery() THEN 0 ELSE 1 END::int8", on: client) == 1)
        }
    }
}
