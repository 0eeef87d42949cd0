import Foundation
import Kappa
import KappaFixtures
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

/// A rebuild partition's checkpoint moves only for its lease's holder, and only from where the
/// batch began: a batch whose commit went through unseen, sent again, moves nothing.
@Suite("Rebuild partition fencing", .serialized)
struct PartitionFenceTests {
    /// Seeds 20 carts of 10 events and waits for the horizon to pass them; returns a configuration
    /// that rebuilds in bulk, in batches of `batchSize`, in `partitions` partitions and as many workers.
    static func seedForRebuild(_ f: ProjectionFixture, batchSize: Int, partitions: Int, lease: Duration) async throws
        -> ProjectionRuntime.Configuration
    {
        let seeded = try await CartEvents.seed(f.store, carts: 20, eventsPerCart: 10)
        try await eventually("the horizon passed the seed") { try await f.store.head() >= seeded }
        var configuration = f.configuration(owner: "ops", lease: lease)
        configuration.rebuildBatchSize = batchSize
        configuration.rebuildThreshold = 1 // in bulk, by partition
        configuration.rebuildPartitions = partitions
        configuration.rebuildWorkers = partitions
        return configuration
    }

    /// The seed's 200 events applied once each, to its 20 carts, and counted so.
    static func expectEveryEventAppliedOnce(_ f: ProjectionFixture, _ name: String) async throws {
        #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(events)::int8 FROM \(name)_v1.carts"), on: f.client) == 200)
        #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(name)_v1.carts"), on: f.client) == 20)
        let row = try #require(try await f.versions([]).versions(of: name).first)
        #expect(row.eventsApplied == 200)
    }

    @Test func aPartitionCheckpointMovesOnceFromWhereTheBatchBegan() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("carts"))
            let seeded = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }
            let core = try RuntimeCore(log: f.store, readModels: f.client, notifier: nil, configuration: f.configuration(owner: "by-hand"), logger: testLogger)
            let key = LeaseKey(name: projection.name, version: 1), rebuildID: Int64 = 7, token: Int64 = 3
            try await f.client.query(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE \(f.runtimeSchema).projections SET rebuild_id = \(rebuildID) WHERE name = '\(projection.name)';
                        """), logger: testLogger)
            try await f.client.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(f.runtimeSchema).rebuild_partitions
                            (name, version, partition, rebuild_id, checkpoint_xid, checkpoint_position, lease_owner, lease_token, lease_expires_at)
                        VALUES ('\(projection.name)', 1, 0, \(rebuildID), '0', 0, 'by-hand', \(token), now() + interval '1 minute')
                        """), logger: testLogger)
            func move(from start: LogPosition, to position: LogPosition, token: Int64 = token) async throws -> Bool {
                let rows = try await f.client.query(
                    core.queries.advancePartition(
                        key, partition: 0, rebuildID: rebuildID, owner: "by-hand", token: token, from: start, to: position,
                        covered: 1, done: false, milliseconds: 60_000, asynchronousCommit: false), logger: testLogger
                ).collect()
                return !rows.isEmpty
            }
            let start = LogPosition.start
            let first = LogPosition(transactionID: 10, globalPosition: 1), second = LogPosition(transactionID: 11, globalPosition: 2)
            #expect(try await move(from: start, to: first))
            #expect(try await !move(from: start, to: first), "the same batch again")
            #expect(try await !move(from: first, to: second, token: token - 1), "a former holder")
            #expect(try await move(from: first, to: second))
            let row = try await f.client.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT checkpoint_position, events_applied FROM \(f.runtimeSchema).rebuild_partitions
                        WHERE name = '\(projection.name)'
                        """), logger: testLogger
            ).collect().first?.decode((Int64, Int64).self)
            #expect(row?.0 == 2 && row?.1 == 2)
        }
    }

    /// A worker whose fenced move finds the checkpoint moved (here moved by hand, as a commit of its own
    /// whose reply was lost would have moved it) goes on from there: it neither applies that batch
    /// again nor gives the partition up (which, still renewed by its owner, nobody could then claim).
    @Test func aWorkerWhoseCheckpointMovedUnderItGoesOnFromThere() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            // A lease far longer than the wait below: a worker that gave its partition up would leave
            // the rebuild waiting for the lease to run out before anyone (itself included) could go on.
            let configuration = try await Self.seedForRebuild(f, batchSize: 50, partitions: 1, lease: .seconds(60))
            let projection = CartSummaryProjection(name: name, delayPerBatch: .milliseconds(300))
            let versions = try f.versions([projection], configuration: configuration)
            let finished = Locked(false)
            let rebuild = Task {
                defer { finished.withLock { $0 = true } }
                try await versions.rebuild(name, version: 1)
            }
            defer { rebuild.cancel() }
            // The second batch is in its transaction (its handler sleeps): move the checkpoint past it.
            try await eventually("a batch is in flight after the first", timeout: .seconds(30)) {
                // (The runtime's tables appear as the rebuild starts.)
                (try? await scalar(
                    PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).rebuild_partitions WHERE name = '\(name)' AND checkpoint_position > 0"),
                    on: f.client)) == 1
            }
            let moved = try await scalar(
                PostgresQuery(
                    unsafeSQL: """
                        WITH batch AS (
                            SELECT e.transaction_id, e.position, e.stream_id FROM \(f.store.configuration.schema).events e, \(f.runtimeSchema).rebuild_partitions p
                            WHERE p.name = '\(name)' AND (e.transaction_id, e.position) > (p.checkpoint_xid, p.checkpoint_position)
                            ORDER BY e.transaction_id, e.position OFFSET 49 LIMIT 1)
                        UPDATE \(f.runtimeSchema).rebuild_partitions p SET checkpoint_xid = batch.transaction_id, checkpoint_position = batch.position,
                            events_applied = events_applied + 50
                        FROM batch WHERE p.name = '\(name)' RETURNING 1
                        """), on: f.client, retrying: false)
            #expect(moved == 1)
            try await eventually("the rebuild finished", timeout: .seconds(20)) { finished.withLock { $0 } }
            try await rebuild.value
            // The batch whose commit was "lost" was not applied again: its 50 events are missing here
            // (the hand-made move wrote no rows), every other event is applied once.
            #expect(try await scalar(PostgresQuery(unsafeSQL: "SELECT sum(events)::int8 FROM \(name)_v1.carts"), on: f.client) == 150)
        }
    }

    /// A parallel rebuild in progress when Migrations/projections/0008 ran placed its partitions'
    /// checkpoints by another rule (a range of stream hashes, read in the order hash then position).
    /// Its rows are marked, and the next run starts the rebuild over instead of reading those
    /// checkpoints as log positions: here, marked by hand and moved back to the start of the log for
    /// one partition, gone on with they would apply events twice. (Unmarked, a rebuild in one
    /// partition would go on: its checkpoint was a log position already.)
    @Test(arguments: [1, 2]) func aRebuildStartedUnderTheOlderPartitionRuleStartsOver(partitions: Int) async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let configuration = try await Self.seedForRebuild(f, batchSize: 20, partitions: partitions, lease: .seconds(2))
            let slow = CartSummaryProjection(name: name, delayPerBatch: .milliseconds(100), ordering: .perStream)
            let rebuild = Task { try await f.versions([slow], configuration: configuration).rebuild(name, version: 1) }
            try await eventually("every partition moved", timeout: .seconds(30)) {
                (try? await scalar(
                    PostgresQuery(
                        unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).rebuild_partitions WHERE name = '\(name)' AND checkpoint_position > 0"),
                    on: f.client)) == Int64(partitions)
            }
            rebuild.cancel()
            _ = await rebuild.result
            let marked = try await scalar(
                PostgresQuery(
                    unsafeSQL: """
                        WITH marked AS (UPDATE \(f.runtimeSchema).rebuild_partitions SET in_log_order = false,
                                            checkpoint_xid = CASE WHEN partition = 0 THEN '0' ELSE checkpoint_xid END,
                                            checkpoint_position = CASE WHEN partition = 0 THEN 0 ELSE checkpoint_position END
                                        WHERE name = '\(name)' AND NOT done RETURNING 1)
                        SELECT count(*) FROM marked
                        """), on: f.client, retrying: false)
            #expect(marked > 0, "the rebuild was stopped half-way")
            // The stopped rebuild's lease runs out (as a killed process's would).
            try await eventually("the lease expired", timeout: .seconds(30)) {
                try await scalar(
                    PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(f.runtimeSchema).projections WHERE name = '\(name)' AND lease_expires_at < now()"),
                    on: f.client) == 1
            }
            try await f.versions([CartSummaryProjection(name: name, ordering: .perStream)], configuration: configuration).rebuild(
                name, version: 1, fromScratch: false)
            try await Self.expectEveryEventAppliedOnce(f, name)
        }
    }

    /// A partition whose commits the read models' server lost (asynchronous commits, then a crash or
    /// failover: its checkpoint and its rows back where they were) is read again from its checkpoint,
    /// however far the read has gone on: here, partition 0 set back to the start with its carts
    /// emptied, by hand, while the rebuild runs. Gone on from where the worker was, it would skip them.
    @Test func aPartitionWhoseCommitsWereLostIsReadAgain() async throws {
        try await withProjectionFixture { f in
            let name = f.name("carts")
            let configuration = try await Self.seedForRebuild(f, batchSize: 20, partitions: 2, lease: .seconds(60))
            let slow = CartSummaryProjection(name: name, delayPerBatch: .milliseconds(100), ordering: .perStream)
            let versions = try f.versions([slow], configuration: configuration)
            let rebuild = Task { try await versions.rebuild(name, version: 1) }
            defer { rebuild.cancel() }
            try await eventually("partition 0 committed twice", timeout: .seconds(30)) {
                (try? await scalar(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT count(*) FROM \(f.runtimeSchema).rebuild_partitions
                            WHERE name = '\(name)' AND partition = 0 AND events_applied >= 20 AND NOT done
                            """), on: f.client)) == 1
            }
            let lost = (0..<20).filter { PartitionedRead.partition(of: "cart-\($0)", count: 2) == 0 }.map { "'c\($0)'" }
            try await f.client.withConnection { connection in
                try await connection.query("BEGIN", logger: testLogger)
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            UPDATE \(f.runtimeSchema).rebuild_partitions SET checkpoint_xid = '0', checkpoint_position = 0, events_applied = 0
                            WHERE name = '\(name)' AND partition = 0
                            """), logger: testLogger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "DELETE FROM \(name)_v1.carts WHERE cart_id IN (\(lost.joined(separator: ", ")))"), logger: testLogger)
                try await connection.query("COMMIT", logger: testLogger)
            }
            try await rebuild.value
            try await Self.expectEveryEventAppliedOnce(f, name)
        }
    }
}
