import Foundation
import Kappa
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// `log verify`, run as an application that embeds `LogCommand` (kappa-fixture-cli) would run it.
@Suite("The log command group", .serialized)
struct LogCommandTests {
    @Test func helpExplainsVerify() async throws {
        let help = try await runCLI(["log", "--help"], projection: "unused")
        #expect(help.status == 0)
        for word in ["verify", "KAPPA_DATABASE_URL"] { #expect(help.out.contains(word), "\(word) missing from: \(help.out)") }
        let verify = try await runCLI(["log", "verify", "--help"], projection: "unused")
        for word in ["--stream", "--log-schema", "hash", "Exit status"] {
            #expect(verify.out.contains(word), "\(word) missing from: \(verify.out)")
        }
    }

    @Test func verifyNamesTheEditedEventAndFailsOnlyThen() async throws {
        try await withEventStore { store, client in
            let schema = store.configuration.schema
            _ = try await store.append(try deposits(3), to: "cli-1", expectedVersion: .noStream)
            _ = try await store.append(try deposits(2), to: "cli-2", expectedVersion: .noStream)
            let intact = try await runCLI(["log", "verify", "--log-schema", schema], projection: "unused")
            #expect(intact.status == 0, "\(intact.err)")
            #expect(intact.out.contains("every hash chain holds: 5 events in 2 streams checked"), "\(intact.out)")

            let edited = try #require(try await store.readStream("cli-1", from: 2, limit: 1).first)
            _ = try await client.query(
                PostgresQuery(
                    unsafeSQL: """
                        DO $tamper$ BEGIN
                            ALTER TABLE \(schema).events DISABLE TRIGGER events_refuse_update_delete;
                            UPDATE \(schema).events SET payload = '{"cents": 7}' WHERE stream_id = 'cli-1' AND stream_version = 2;
                            ALTER TABLE \(schema).events ENABLE TRIGGER events_refuse_update_delete;
                        END $tamper$
                        """), logger: testLogger
            ).collect()
            let broken = try await runCLI(["log", "verify", "--log-schema", schema], projection: "unused")
            #expect(broken.status == 1)
            #expect(broken.out.contains("broken: stream 'cli-1' version 2 (position \(edited.position), event \(edited.id)"), "\(broken.out)")
            #expect(broken.out.contains("1 event with a broken chain; 5 events in 2 streams checked"), "\(broken.out)")
            #expect(broken.err.contains("error: the log's history was changed") && broken.err.contains("\(edited.id)"), "\(broken.err)")

            let other = try await runCLI(["log", "verify", "--stream", "cli-2", "--log-schema", schema], projection: "unused")
            #expect(other.status == 0, "\(other.out)\(other.err)")
            #expect(other.out.contains("2 events in 1 stream checked"), "\(other.out)")
            #expect(try await runCLI(["log", "verify", "--stream", "cli-1", "--log-schema", schema], projection: "unused").status == 1)
        }
    }

    @Test func aLogThatCannotBeVerifiedExitsWithTwo() async throws {
        try await TestDatabase.withSchema(prefix: "kappa_test") { _, schema in
            let missing = try await runCLI(["log", "verify", "--log-schema", schema], projection: "unused")
            #expect(missing.status == 2)
            #expect(missing.err.contains("error:"), "\(missing.err)")
            let bad = try await runCLI(["log", "verify", "--stream", "not a stream id", "--log-schema", schema], projection: "unused")
            #expect(bad.status != 0 && bad.status != 1)
        }
    }
}
