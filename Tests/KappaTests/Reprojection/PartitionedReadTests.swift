import Kappa
import KappaFixtures
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

/// A parallel rebuild's partitions are fed from one read of the log: each event is read once, however
/// many partitions a process works, and each partition gets exactly its own streams' events.
@Suite("Partitioned reads of a rebuild", .serialized)
struct PartitionedReadTests {
    /// Every process must put a stream in the same partition, in every run and version: a rebuild in
    /// flight is split by this rule, so a change to it must be a new rule (Migrations/projections).
    @Test func aStreamsPartitionIsPinned() {
        let pinned: [(String, [Int])] = [("cart-1", [0, 0, 0, 1]), ("cart-2", [1, 1, 2, 5]), ("cart-3", [0, 0, 0, 0]), ("order-42", [1, 1, 2, 4])]
        for (stream, expected) in pinned {
            #expect([2, 3, 4, 8].map { PartitionedRead.partition(of: stream, count: $0) } == expected, "\(stream)")
        }
        #expect(PartitionedRead.partition(of: "anything", count: 1) == 0)
    }

    /// Ids that differ only in their last characters spread evenly: no partition has more than 10 %
    /// over or under its share of 10,000 carts.
    @Test(arguments: [2, 3, 4, 5, 8]) func streamsSpreadEvenly(partitions: Int) {
        var counts = Array(repeating: 0, count: partitions)
        for cart in 0..<10_000 { counts[PartitionedRead.partition(of: "cart-\(cart)", count: partitions)] += 1 }
        let share = 10_000.0 / Double(partitions)
        #expect(counts.allSatisfy { abs(Double($0) - share) <= share * 0.1 }, "\(counts)")
    }

    /// Three partitions in one process read the log once between them (the rebuild's 3,000 events,
    /// not 9,000), and build what one worker builds.
    @Test func threePartitionsReadTheLogOnceAndBuildWhatOneWorkerBuilds() async throws {
        try await withProjectionFixture { f in
            let head = try await CartEvents.seed(f.store, carts: 60, eventsPerCart: 50)
            try await eventually("the horizon passed the seed") { try await f.store.head() >= head }
            var built: [String] = []
            for workers in [1, 3] {
                var configuration = f.configuration(owner: "bulk-\(workers)")
                configuration.rebuildThreshold = 1
                configuration.rebuildBatchSize = 100
                configuration.rebuildWorkers = workers
                configuration.rebuildPartitions = workers
                let projection = CartSummaryProjection(name: f.name("bulk\(workers)"), ordering: .perStream)
                let versions = try f.versions([projection], configuration: configuration)
                try await versions.rebuild(projection.name, version: 1)
                // Once each (a fault that resumes the rebuild may read a stretch again, never the log per partition).
                #expect((3_000..<6_000).contains(versions.rebuildEventsRead), "\(workers) workers: \(versions.rebuildEventsRead)")
                let row = try #require(try await versions.versions(of: projection.name).first)
                #expect(row.checkpoint == head && row.eventsApplied == 3_000)
                #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(events)::int8 FROM \(projection.name)_v1.carts"), on: f.client) == 3_000)
                built.append("\(projection.name)_v1.carts")
            }
            #expect(try await f.difference(built[0], built[1]) == 0)
            // Nothing reads the log by stream hash: Migrations/log/0009 dropped that index, which every append paid for.
            let hashIndexes = try await scalar(
                PostgresQuery(
                    unsafeSQL: "SELECT count(*) FROM pg_indexes WHERE schemaname = '\(f.store.configuration.schema)' AND indexdef LIKE '%hashtext%'"),
                on: f.client)
            #expect(hashIndexes == 0)
        }
    }
}
