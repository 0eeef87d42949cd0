import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

@Suite("Migration by replay: crashes", .serialized)
struct ReprojectionProcessTests {
    func partitionProgress(_ f: ProjectionFixture, _ name: String) async throws -> Int64 {
        try await scalar(
            PostgresQuery(unsafeSQL: "SELECT coalesce(sum(events_applied), 0)::int8 FROM \(f.runtimeSchema).rebuild_partitions WHERE name = '\(name)'"),
            on: f.client)
    }

    @Test func aRebuildKilledHalfwayResumesFromItsCheckpoint() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            try await f.runtime([]).migrate()
            let seeded = try await CartEvents.seed(f.store, carts: 150, eventsPerCart: 40)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let first = try ProjectorProcess(
                f, owner: "first", batchSize: 200, leaseMilliseconds: 1_000, delayMilliseconds: 100,
                mode: "rebuild-v2", name: name)
            try await eventually("the rebuild is part-way through", timeout: .seconds(60)) { try await partitionProgress(f, name) >= 1_200 }
            await first.killHard()
            let atKill = try await partitionProgress(f, name)
            #expect(atKill < 6_000, "killed in the middle of the rebuild")
            let second = try ProjectorProcess(
                f, owner: "second", batchSize: 200, leaseMilliseconds: 1_000, delayMilliseconds: 0,
                mode: "rebuild-v2", name: name)
            try await eventually("the second process finishes the rebuild", timeout: .seconds(60)) { !second.process.isRunning }
            #expect(second.process.terminationStatus == 0, "\(second.log)")
            // It went on from the partitions' checkpoints: exactly the events the first had not committed.
            #expect(second.log.contains("kappa.resumed=true"))
            // Where it resumed: at least what was committed when the first was killed — a commit the
            // server was carrying out at the kill may land just after that read.
            let resumedAt = second.log.split(separator: "\n").first { $0.contains("kappa.resumed=true") }
                .flatMap { line in line.split(separator: " ").first { $0.hasPrefix("kappa.events_done=") } }
                .flatMap { Int64($0.dropFirst("kappa.events_done=".count)) }
            let done = try #require(resumedAt, "\(second.log.suffix(2_000))")
            #expect(done >= atKill && done < 6_000)
            #expect(second.log.contains("rebuilt events_this_run=\(6_000 - done) events_total=6000"), "\(second.log.suffix(2_000))")
            // And the result equals v2 built live from the first event.
            var live = f.configuration(owner: "live")
            live.rebuildThreshold = .max
            let reference = CartSummaryV2Projection(name: f.name("ref"))
            let runtime = try f.runtime([reference], configuration: live)
            try await withRunning(runtime) { try await runtime.waitUntil(reference.name, hasPassed: seeded, timeout: .seconds(60)) }
            let columns = "cart_id, items, total_cents, checked_out, events, items_added"
            #expect(try await f.difference("\(reference.name)_v2.carts", "\(name)_v2.carts", columns: columns) == 0)
            #expect(try await f.difference("\(reference.name)_v2.product_sales", "\(name)_v2.product_sales", columns: "sku, units") == 0)
            let row = try #require(try await f.versions([]).versions(of: name).first { $0.version == 2 })
            #expect(row.eventsApplied == 6_000)
            #expect(row.rebuildTarget == nil)
        }
    }

    @Test func aCrashThatEmptiesUnloggedTablesStartsTheRebuildOver() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            try await f.runtime([]).migrate()
            let seeded = try await CartEvents.seed(f.store, carts: 100, eventsPerCart: 30)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let first = try ProjectorProcess(
                f, owner: "first", batchSize: 150, leaseMilliseconds: 1_000, delayMilliseconds: 100,
                mode: "rebuild-v2", name: name)
            try await eventually("the rebuild is part-way through", timeout: .seconds(60)) { try await partitionProgress(f, name) >= 600 }
            await first.killHard()
            // What a server crash or a failover does to UNLOGGED tables (the v2 fixture loads into them).
            let unlogged = try await scalar(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = '\(name)_v2' AND c.relkind = 'r' AND c.relpersistence = 'u'
                        """), on: f.client)
            #expect(unlogged == 3)
            try await f.client.query(PostgresQuery(unsafeSQL: "TRUNCATE \(f.runtimeSchema).rebuild_sentinels, \(name)_v2.carts, \(name)_v2.product_sales"))
            let second = try ProjectorProcess(
                f, owner: "second", batchSize: 150, leaseMilliseconds: 1_000, delayMilliseconds: 0,
                mode: "rebuild-v2", name: name)
            try await eventually("the second process finishes the rebuild", timeout: .seconds(60)) { !second.process.isRunning }
            #expect(second.process.terminationStatus == 0, "\(second.log.suffix(2_000))")
            #expect(second.log.contains("starting the rebuild over"))
            #expect(second.log.contains("rebuilt events_this_run=3000 events_total=3000"), "\(second.log.suffix(2_000))")
            var live = f.configuration(owner: "live")
            live.rebuildThreshold = .max
            let reference = CartSummaryV2Projection(name: f.name("ref"))
            let runtime = try f.runtime([reference], configuration: live)
            try await withRunning(runtime) { try await runtime.waitUntil(reference.name, hasPassed: seeded, timeout: .seconds(60)) }
            let columns = "cart_id, items, total_cents, checked_out, events, items_added"
            #expect(try await f.difference("\(reference.name)_v2.carts", "\(name)_v2.carts", columns: columns) == 0)
            #expect(try await f.difference("\(reference.name)_v2.product_sales", "\(name)_v2.product_sales", columns: "sku, units") == 0)
            let stillUnlogged = try await scalar(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = '\(name)_v2' AND c.relpersistence = 'u'
                        """), on: f.client)
            #expect(stillUnlogged == 0)
        }
    }

    @Test func aProcessKilledDuringSwitchesLeavesExactlyOneVersionActive() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let seeded = try await CartEvents.seed(f.store, carts: 20, eventsPerCart: 10)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let versions = try f.versions([CartSummaryProjection(name: name), CartSummaryV2Projection(name: name)])
            try await versions.rebuild(name, version: 1)
            try await versions.rebuild(name, version: 2)
            for round in 1...4 {
                let before = try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).switches"), on: f.client)
                let switcher = try ProjectorProcess(f, owner: "switcher-\(round)", mode: "switch-loop", name: name)
                // Kill it at whatever point it has reached after a few switches (mid-transaction, often).
                do {
                    try await eventually("the process is switching", timeout: .seconds(60)) {
                        try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).switches"), on: f.client) >= before
                            + Int64(round * 3)
                    }
                } catch {
                    Issue.record("the switching process: \(switcher.log.prefix(3_000))")
                    throw error
                }
                await switcher.killHard()
                let rows = try await versions.versions(of: name)
                let active = rows.filter { $0.lifecycle == .active }
                #expect(active.count == 1, "round \(round): \(rows.map { "v\($0.version) \($0.lifecycle)" })")
                #expect(rows.filter { $0.lifecycle == .retired }.count == 1)
                // The stable names are exactly the active version's tables, no mix.
                let served = try await scalar(PostgresQuery(unsafeSQL: "SELECT version::int8 FROM \(name).about"), on: f.client)
                #expect(Int(served) == active.first?.version)
                let views = try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM pg_views WHERE schemaname = '\(name)'"), on: f.client)
                #expect(views == (served == 2 ? 3 : 2))
                let v2Column = try await scalar(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT count(*) FROM information_schema.columns WHERE table_schema = '\(name)' AND table_name = 'carts' AND column_name = 'items_added'
                            """), on: f.client)
                #expect(v2Column == (served == 2 ? 1 : 0))
            }
        }
    }
}

@Suite("Migration by replay: several processes", .serialized)
struct SharedRebuildTests {
    @Test func twoProcessesShareOneParallelRebuild() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            try await f.runtime([]).migrate()
            let seeded = try await CartEvents.seed(f.store, carts: 160, eventsPerCart: 25)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
            let a = try ProjectorProcess(f, owner: "a", batchSize: 100, leaseMilliseconds: 2_000, delayMilliseconds: 50, mode: "run-v2", name: name)
            let b = try ProjectorProcess(f, owner: "b", batchSize: 100, leaseMilliseconds: 2_000, delayMilliseconds: 50, mode: "run-v2", name: name)
            // Both processes work partitions of the one rebuild: one coordinates (holds the version), the other helps.
            let owners = Locked(Set<String>())
            try await eventually("both processes hold rebuild partitions", timeout: .seconds(60)) {
                for try await owner in try await f.client.query(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT lease_owner FROM \(f.runtimeSchema).rebuild_partitions WHERE name = '\(name)' AND lease_owner IS NOT NULL AND NOT done
                            """), logger: testLogger
                ).decode(String.self) {
                    owners.withLock { _ = $0.insert(owner) }
                }
                return owners.withLock { $0 } == ["a", "b"]
            }
            let versions = try f.versions([])
            try await eventually("v2 is built and serving", timeout: .seconds(60)) { try await versions.activeVersion(of: name) == 2 }
            await a.stopGracefully()
            await b.stopGracefully()
            let writers = try await scalar(PostgresQuery(unsafeSQL: "SELECT count(DISTINCT written_by) FROM \(name)_v2.carts"), on: f.client)
            #expect(writers == 2, "rows written by both processes")
            var live = f.configuration(owner: "live")
            live.rebuildThreshold = .max
            let reference = CartSummaryV2Projection(name: f.name("ref"))
            let runtime = try f.runtime([reference], configuration: live)
            try await withRunning(runtime) { try await runtime.waitUntil(reference.name, hasPassed: seeded, timeout: .seconds(60)) }
            let columns = "cart_id, items, total_cents, checked_out, events, items_added"
            #expect(try await f.difference("\(reference.name)_v2.carts", "\(name)_v2.carts", columns: columns) == 0)
            #expect(try await f.difference("\(reference.name)_v2.product_sales", "\(name)_v2.product_sales", columns: "sku, units") == 0)
        }
    }
}
