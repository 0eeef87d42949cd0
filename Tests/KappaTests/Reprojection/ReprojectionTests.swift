import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

@Suite("Migration by replay", .serialized)
struct ReprojectionTests {
    /// What one reader saw: the version `about` says, and whether the carts rows have v2's column.
    struct Answer: Sendable {
        let version: Int32
        let hasV2Column: Bool
    }

    /// What the readers saw, in counts (they run in tight loops).
    struct Tally: Sendable {
        var answers: [Int32: Int] = [:]
        var mixed = 0
        var last: Int32?
        var failures = 0
        var errors: [String] = []

        mutating func record(_ rows: [Answer]) {
            for row in rows {
                answers[row.version, default: 0] += 1
                if (row.version == 2) != row.hasV2Column { mixed += 1 }
                last = row.version
            }
        }

        mutating func fail(_ error: String) {
            failures += 1
            if errors.count < 5 { errors.append(error) }
        }
    }

    @Test func zeroDowntimeThroughRebuildPromoteAndRollback() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let seeded = try await CartEvents.seed(f.store, carts: 60, eventsPerCart: 25)
            var configuration = f.configuration(owner: "service")
            configuration.rebuildThreshold = 200
            configuration.rebuildBatchSize = 250
            configuration.rebuildWorkers = 3
            let v1 = CartSummaryProjection(name: name, version: 1), v2 = CartSummaryV2Projection(name: name)
            let first = try f.runtime([v1], configuration: configuration)
            try await withRunning(first) {
                try await first.waitUntil(name, hasPassed: seeded, timeout: .seconds(30))
                try await eventually("v1 is active") { try await first.versions.activeVersion(of: name) == 1 }
            }
            // Readers query the stable names the whole time; a writer keeps appending.
            let tally = Locked(Tally()), stop = Locked(false)
            let runtime = try f.runtime([v1, v2], configuration: configuration)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while !stop.withLock({ $0 }) {
                            do {
                                let query = PostgresQuery(
                                    unsafeSQL: "SELECT a.version, to_jsonb(c)::text FROM \(name).about a, \(name).carts c ORDER BY c.cart_id LIMIT 5")
                                var rows: [(Int32, String)] = []
                                for try await row in try await f.client.query(query, logger: testLogger).decode((Int32, String).self) { rows.append(row) }
                                tally.withLock { $0.record(rows.map { Answer(version: $0.0, hasV2Column: $0.1.contains("\"items_added\"")) }) }
                            } catch {
                                tally.withLock { $0.fail(String(reflecting: error)) }
                                try await Task.sleep(for: .milliseconds(10))
                            }
                        }
                    }
                }
                group.addTask {
                    var cart = 1_000
                    while !stop.withLock({ $0 }) {
                        _ = try await f.store.append(
                            [CartEvents.added(cart: cart), CartEvents.checkedOut(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .noStream)
                        cart += 1
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
                // Whatever happens, the readers and the writer stop.
                let outcome: Result<Void, any Error>
                do {
                    outcome = .success(
                        try await withRunning(runtime) {
                            try await eventually("v2 is built in bulk and caught up", timeout: .seconds(60)) {
                                try await runtime.versions.versions(of: name).first { $0.version == 2 }?.lifecycle == .caughtUp
                            }
                            let comparison = try await runtime.versions.compare(name, old: 1, new: 2, ignoring: ["written_by", "version"])
                            #expect(comparison.samePosition)
                            #expect(comparison.differingRows == 0)
                            #expect(comparison.tablesOnlyInNew == ["product_sales"])
                            #expect(comparison.tables.first { $0.name == "carts" }?.columnsOnlyInNew == ["items_added"])
                            try await runtime.versions.promote(name, version: 2)
                            try await eventually("readers see v2") { tally.withLock { $0.last == 2 } }
                            #expect(try await runtime.versions.rollback(name) == 1)
                            try await eventually("readers see v1 again") { tally.withLock { $0.last == 1 } }
                            try await runtime.versions.promote(name, version: 2)
                            try await eventually("readers see v2 again") { tally.withLock { $0.last == 2 } }
                            let head = try await f.store.head()
                            try await runtime.waitUntil(name, version: 1, hasPassed: head, timeout: .seconds(30))
                        })
                } catch {
                    outcome = .failure(error)
                }
                stop.withLock { $0 = true }
                try await group.waitForAll()
                try outcome.get()
            }
            let seen = tally.withLock { $0 }
            #expect(seen.failures == 0, "first errors: \(seen.errors)")
            #expect(seen.answers[1, default: 0] > 50 && seen.answers[2, default: 0] > 50, "\(seen.answers)")
            // Every answer entirely one version: v1's `about` with v1's columns, v2's with v2's.
            #expect(seen.mixed == 0)
            // v1, retired, kept following the log for a rollback.
            let v1Row = try #require(try await runtime.versions.versions(of: name).first { $0.version == 1 })
            #expect(v1Row.lifecycle == .retired)
            let switches = try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).switches WHERE name = '\(name)'"), on: f.client)
            #expect(switches == 4) // v1 first, promote, rollback, promote
        }
    }

    @Test func bulkAndParallelRebuildsEqualLiveProcessing() async throws {
        try await withProjectionFixture { f in
            let head = try await CartEvents.seed(f.store, carts: 120, eventsPerCart: 30)
            // The horizon is cluster-wide: other tests' open transactions can hold it back for a moment.
            try await eventually("the horizon passed the seed") { try await f.store.head() >= head }
            // Live, batch by batch from the first event: the reference.
            var live = f.configuration(owner: "live")
            live.rebuildThreshold = .max
            let reference = CartSummaryV2Projection(name: f.name("live"))
            let liveRuntime = try f.runtime([reference], configuration: live)
            try await withRunning(liveRuntime) { try await liveRuntime.waitUntil(reference.name, hasPassed: head, timeout: .seconds(60)) }
            // One ordered worker (global order), and 3 workers on 5 partitions (per-stream order).
            for (ordering, workers, partitions) in [(ProjectionOrdering.global, 1, 1), (.perStream, 3, 5)] {
                var configuration = f.configuration(owner: "bulk-\(workers)")
                configuration.rebuildThreshold = 1
                configuration.rebuildBatchSize = 300
                configuration.rebuildWorkers = workers
                configuration.rebuildPartitions = partitions
                let bulk = CartSummaryV2Projection(name: f.name("bulk\(workers)"), ordering: ordering)
                let seen = Locked(Set<Int>())
                try await f.versions([bulk], configuration: configuration).rebuild(bulk.name, version: 2) { progress in
                    seen.withLock { _ = $0.insert(progress.partitions) }
                }
                #expect(seen.withLock { $0 } == [partitions])
                let columns = "cart_id, items, total_cents, checked_out, events, items_added"
                #expect(try await f.difference("\(reference.name)_v2.carts", "\(bulk.name)_v2.carts", columns: columns) == 0)
                #expect(try await f.difference("\(reference.name)_v2.product_sales", "\(bulk.name)_v2.product_sales", columns: "sku, units") == 0)
                #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(bulk.name)_v2.carts"), on: f.client) == 120)
                // Built in bulk: loaded unlogged, made logged, indexed after the load, and nothing left behind.
                let unlogged = try await scalar(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = '\(bulk.name)_v2' AND c.relpersistence = 'u'
                            """), on: f.client)
                #expect(unlogged == 0)
                let index = try await scalar(
                    PostgresQuery(unsafeSQL: "SELECT count(*) FROM pg_indexes WHERE schemaname = '\(bulk.name)_v2' AND indexname = 'carts_checked_out'"),
                    on: f.client)
                #expect(index == 1)
                let leftovers = try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).rebuild_partitions"), on: f.client)
                #expect(leftovers == 0)
                let row = try #require(try await f.versions([]).versions(of: bulk.name).first)
                #expect(row.checkpoint == head)
                #expect(row.lifecycle == .active) // the first version of a name serves once caught up
                #expect(row.eventsApplied == 120 * 30)
            }
        }
    }

    @Test func automaticModeBuildsTheNewVersionInTheBackgroundAndPromotesIt() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let seeded = try await CartEvents.seed(f.store, carts: 50, eventsPerCart: 20)
            var configuration = f.configuration(owner: "service")
            configuration.rebuildThreshold = 100
            let v1 = CartSummaryProjection(name: name), v2 = CartSummaryV2Projection(name: name)
            let before = try f.runtime([v1], configuration: configuration)
            try await withRunning(before) { try await before.waitUntil(name, hasPassed: seeded, timeout: .seconds(30)) }
            // The next deployment ships v2 and asks for automatic promotion.
            configuration.promoteWhenCaughtUp = true
            let after = try f.runtime([v1, v2], configuration: configuration)
            // Appends keep arriving all along — from before the runtime starts — so v1 is ahead of v2
            // at almost any moment: v2 is promoted at a horizon where it is not behind.
            let writing = Locked(true), written = Locked(0)
            let writer = Task {
                while writing.withLock({ $0 }) {
                    let n = written.withLock {
                        $0 += 1
                        return $0
                    }
                    _ = try await f.store.append([CartEvents.added(cart: 5_000 + n % 20)], to: StreamID("cart-\(5_000 + n % 20)"), expectedVersion: .any)
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            defer { writing.withLock { $0 = false } }
            try await eventually("appends are arriving") { written.withLock { $0 } > 50 }
            try await withRunning(after) {
                try await eventually("v2 is promoted once caught up", timeout: .seconds(60)) { try await after.versions.activeVersion(of: name) == 2 }
                writing.withLock { $0 = false }
                try await writer.value
                #expect(written.withLock { $0 } > 50, "appends kept arriving")
                let rows = try await after.versions.versions(of: name)
                #expect(rows.map(\.lifecycle) == [.retired, .active])
                #expect(rows.allSatisfy { $0.checkpoint >= seeded })
                let units = try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(units)::int8 FROM \(name).product_sales"), on: f.client)
                #expect(units > 0)
            }
        }
    }

    /// Two versions of a new name built at once: the lower one serves first, the higher one waits
    /// (promoted by hand here; automatic mode would promote it after). Before, whichever caught up
    /// first was promoted, and a promotion of v2 by hand then failed as `alreadyActive`.
    @Test func withNoVersionActiveTheLowestIsPromotedFirst() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let seeded = try await CartEvents.seed(f.store, carts: 20, eventsPerCart: 10)
            let v1 = CartSummaryProjection(name: name), v2 = CartSummaryV2Projection(name: name)
            let runtime = try f.runtime([v2, v1])
            try await withRunning(runtime) {
                try await runtime.waitUntil(name, version: 2, hasPassed: seeded, timeout: .seconds(30))
                try await runtime.waitUntil(name, version: 1, hasPassed: seeded, timeout: .seconds(30))
                try await eventually("v1 serves") { try await runtime.versions.activeVersion(of: name) == 1 }
                try await eventually("v2 has caught up") { try await runtime.versions.versions(of: name).last?.lifecycle == .caughtUp }
                try await runtime.versions.promote(name, version: 2)
                #expect(try await runtime.versions.versions(of: name).map(\.lifecycle) == [.retired, .active])
            }
        }
    }

    @Test func aVersionStartedInARunningRuntimeIsBuiltThenFollowsTheLogLive() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let seeded = try await CartEvents.seed(f.store, carts: 40, eventsPerCart: 20)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            var configuration = f.configuration(owner: "service")
            configuration.rebuildThreshold = 100
            configuration.rebuildBatchSize = 200
            let v1 = CartSummaryProjection(name: name), v2 = CartSummaryV2Projection(name: name)
            let runtime = try f.runtime([v1], configuration: configuration)
            try await withRunning(runtime) {
                try await runtime.waitUntil(name, hasPassed: seeded, timeout: .seconds(30))
                #expect(try await runtime.versions.versions(of: name).map(\.version) == [1])
                // A new version, started without a restart: built in bulk beside v1, then live.
                try await runtime.start(v2)
                await #expect(throws: ProjectionError.self) { try await runtime.start(v2) }
                try await eventually("v2 is built and caught up", timeout: .seconds(60)) {
                    try await runtime.versions.versions(of: name).first { $0.version == 2 }?.lifecycle == .caughtUp
                }
                #expect(runtime.rebuildProgress().isEmpty)
                let rebuilt = try await scalar(
                    PostgresQuery(unsafeSQL: "SELECT events_applied FROM \(f.runtimeSchema).projections WHERE name = '\(name)' AND version = 2"), on: f.client)
                #expect(rebuilt == 40 * 20)
                let later = try await f.store.append([CartEvents.added(cart: 9_001)], to: StreamID("cart-9001"), expectedVersion: .noStream)
                try await runtime.waitUntil(name, version: 2, hasPassed: later.positions[0], timeout: .seconds(10))
                try await runtime.versions.promote(name, version: 2)
                #expect(try await runtime.versions.activeVersion(of: name) == 2)
                let carts = try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(name).carts"), on: f.client)
                #expect(carts == 41)
            }
            // A runtime that runs only v1 (a service restarted with its old list, say) waits on v2, the
            // version readers see: with nothing following v2, its wait times out instead of returning
            // once v1 has passed the append while readers get v2's tables, frozen.
            let onlyV1 = try f.runtime([v1], configuration: configuration)
            try await withRunning(onlyV1) {
                let unseen = try await f.store.append([CartEvents.added(cart: 9_002)], to: StreamID("cart-9002"), expectedVersion: .noStream)
                try await onlyV1.waitUntil(name, version: 1, hasPassed: unseen.positions[0], timeout: .seconds(10))
                let error = await #expect(throws: ProjectionError.self) {
                    try await onlyV1.waitUntil(name, hasPassed: unseen.positions[0], timeout: .milliseconds(500))
                }
                #expect(error?.code == .timedOut)
                #expect(error?.version == 2)
            }
        }
    }
}
