import Foundation
import Kappa
import KappaFixtures
@testable import KappaPostgres
import PostgresNIO
import Testing

/// A rebuild partition's checkpoint moves only for its lease's holder, and only from where the
/// batch began: a batch whose commit went through unseen, sent again, moves nothing.
@Suite("Rebuild partition fencing", .serialized)
struct PartitionFenceTests {
    @Test func aPartitionCheckpointMovesOnceFromWhereTheBatchBegan() async throws {
        try await withProjectionFixture { f in
            let projection = CartSummaryProjection(name: f.name("carts"))
            let seeded = try await f.store.append([CartEvents.added(cart: 1)], to: "cart-1", expectedVersion: .noStream).lastPosition!
            let runtime = try f.runtime([projection])
            try await withRunning(runtime) { try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30)) }
            let core = try RuntimeCore(log: f.store, readModels: f.client, notifier: nil, configuration: f.configuration(owner: "by-hand"), logger: testLogger)
            let key = LeaseKey(name: projection.name, version: 1), rebuildID: Int64 = 7, token: Int64 = 3
            try await f.client.query(PostgresQuery(unsafeSQL: """
                UPDATE \(f.runtimeSchema).projections SET rebuild_id = \(rebuildID) WHERE name = '\(projection.name)';
                """), logger: testLogger)
            try await f.client.query(PostgresQuery(unsafeSQL: """
                INSERT INTO \(f.runtimeSchema).rebuild_partitions
                    (name, version, partition, rebuild_id, checkpoint_xid, checkpoint_position, lease_owner, lease_token, lease_expires_at)
                VALUES ('\(projection.name)', 1, 0, \(rebuildID), '0', 0, 'by-hand', \(token), now() + interval '1 minute')
                """), logger: testLogger)
            func move(from start: LogPosition, to position: LogPosition, token: Int64 = token) async throws -> Bool {
                let rows = try await f.client.query(core.queries.advancePartition(
                    key, partition: 0, rebuildID: rebuildID, owner: "by-hand", token: token, from: start, to: position,
                    covered: 1, done: false, milliseconds: 60_000, asynchronousCommit: false), logger: testLogger).collect()
                return !rows.isEmpty
            }
            let first = LogPosition(transactionID: 10, globalPosition: 1), second = LogPosition(transactionID: 11, globalPosition: 2)
            #expect(try await move(from: .start, to: first))
            #expect(try await !move(from: .start, to: first), "the same batch again")
            #expect(try await !move(from: first, to: second, token: token - 1), "a former holder")
            #expect(try await move(from: first, to: second))
            let row = try await f.client.query(PostgresQuery(unsafeSQL: """
                SELECT checkpoint_position, events_applied FROM \(f.runtimeSchema).rebuild_partitions WHERE name = '\(projection.name)'
                """), logger: testLogger).collect().first?.decode((Int64, Int64).self)
            #expect(row?.0 == 2 && row?.1 == 2)
        }
    }
}
