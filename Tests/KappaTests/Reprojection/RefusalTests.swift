import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

@Suite("Migration refusals", .serialized)
struct RefusalTests {
    /// What must not change when an operation is refused.
    struct Snapshot: Equatable {
        let lifecycles: [String]
        let switches: Int64
        let served: Int64
    }

    func snapshot(_ f: ProjectionFixture, _ name: String) async throws -> Snapshot {
        let rows = try await f.versions([]).versions(of: name).map { "v\($0.version):\($0.lifecycle)" }
        let switches = try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).switches"), on: f.client)
        let served = try await scalar(PostgresQuery(unsafeSQL: "SELECT version::int8 FROM \(name).about"), on: f.client)
        return Snapshot(lifecycles: rows, switches: switches, served: served)
    }

    func expectRefused(
        _ code: ProjectionError.Code, _ f: ProjectionFixture, _ name: String, mentioning text: String,
        sourceLocation: SourceLocation = #_sourceLocation, _ operation: () async throws -> Void
    ) async throws {
        let before = try await snapshot(f, name)
        let error = await #expect(throws: ProjectionError.self, sourceLocation: sourceLocation) { try await operation() }
        #expect(error?.code == code, sourceLocation: sourceLocation)
        #expect(error?.description.contains(text) == true, "\(String(describing: error))", sourceLocation: sourceLocation)
        let after = try await snapshot(f, name)
        #expect(after == before, "nothing changes on a refusal", sourceLocation: sourceLocation)
    }

    @Test func everyRefusalSaysWhyAndChangesNothing() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let seeded = try await CartEvents.seed(f.store, carts: 10, eventsPerCart: 10)
            // A rebuild goes up to the head readers can see: wait until the cluster-wide horizon passed the seed.
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            var configuration = f.configuration(owner: "ops")
            configuration.maximumPromotionLag = 2
            configuration.batchSize = 5
            let v1 = CartSummaryProjection(name: name), v2 = CartSummaryV2Projection(name: name, delayPerBatch: .milliseconds(300))
            let versions = try f.versions([v1, v2], configuration: configuration)
            try await versions.rebuild(name, version: 1)
            // Not active: what the rows say, and where the log's head is, name why.
            let (rebuilt, head) = (try await versions.versions(of: name), try await f.store.head())
            try #require(try await versions.activeVersion(of: name) == 1, "\(rebuilt), head \(head)")

            try await expectRefused(.unknownVersion, f, name, mentioning: "v7") { try await versions.promote(name, version: 7) }
            try await expectRefused(.alreadyActive, f, name, mentioning: "already") { try await versions.promote(name, version: 1) }
            try await expectRefused(.versionIsActive, f, name, mentioning: "active version") { try await versions.drop(name, version: 1) }
            try await expectRefused(.noPreviousVersion, f, name, mentioning: "roll back") { try await versions.rollback(name) }
            try await expectRefused(.versionIsActive, f, name, mentioning: "from scratch") { try await versions.rebuild(name, version: 1) }

            // Two rebuilds of one version at once: the second is refused while the first holds it.
            var other = configuration
            other.owner = "other-process"
            let second = try f.versions([v1, v2], configuration: other)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await versions.rebuild(name, version: 2) }
                try await eventually("the first rebuild holds v2") {
                    try await versions.versions(of: name).first { $0.version == 2 }?.leaseOwner?.hasPrefix("ops-rebuild-") == true
                }
                // Building, so not promotable yet.
                try await expectRefused(.notCaughtUp, f, name, mentioning: "still building") { try await versions.promote(name, version: 2) }
                try await expectRefused(.notRetired, f, name, mentioning: "not retired") { try await versions.drop(name, version: 2) }
                try await expectRefused(.rebuildInProgress, f, name, mentioning: "ops") { try await second.rebuild(name, version: 2) }
                try await group.waitForAll()
            }
            // Caught up, but the log moved on with nobody following v2: lagging versions are not promoted.
            var appended = LogPosition.start
            for cart in 100..<105 {
                appended = try await f.store.append([CartEvents.added(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .any).lastPosition!
            }
            let last = appended
            try await eventually("the horizon passed the appends") { try await f.store.head() >= last }
            try await expectRefused(.notCaughtUp, f, name, mentioning: "maximumPromotionLag") { try await versions.promote(name, version: 2) }
            try await versions.rebuild(name, version: 2, fromScratch: false) // catches up from its checkpoint
            try await versions.promote(name, version: 2)
            #expect(try await snapshot(f, name).served == 2)

            try await expectRefused(.versionBelowActive, f, name, mentioning: "rollback") { try await versions.promote(name, version: 1) }
            try await expectRefused(.versionBelowActive, f, name, mentioning: "lower than the active version 2") {
                try await versions.rebuild(name, version: 1)
            }
            try await expectRefused(.versionIsActive, f, name, mentioning: "active version") { try await versions.drop(name, version: 2) }
            try await expectRefused(.unknownProjection, f, name, mentioning: "not registered") {
                try await f.versions([]).rebuild(name, version: 3)
            }

            // Drop the retired v1: its schema goes; dropping again, or rolling back to it, is refused.
            try await versions.drop(name, version: 1)
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM pg_namespace WHERE nspname = '\(name)_v1'"), on: f.client) == 0)
            try await expectRefused(.versionDropped, f, name, mentioning: "dropped") { try await versions.drop(name, version: 1) }
            try await expectRefused(.noPreviousVersion, f, name, mentioning: "roll back") { try await versions.rollback(name) }
            // Bad names never reach SQL.
            let bad = await #expect(throws: KappaPostgresError.self) { try await versions.promote("carts; DROP TABLE x", version: 2) }
            #expect(bad?.code == .invalidIdentifier)
            let confusing = await #expect(throws: KappaPostgresError.self) { try await versions.promote("carts_v2", version: 1) }
            #expect(confusing?.code == .invalidIdentifier)
            // Names whose stable-names schema is someone else's.
            for reserved in ["public", "pg_catalog", f.runtimeSchema, f.store.configuration.schema] {
                let refused = #expect(throws: KappaPostgresError.self) { _ = try f.versions([CartSummaryProjection(name: reserved)]) }
                #expect(refused?.code == .invalidIdentifier, "\(reserved)")
            }
        }
    }
}
