import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// A handler that folds its batch into set-based statements writes the same read model as one that
/// runs statements event by event, whatever the batches' boundaries: ``CartLinesFoldedProjection``
/// beside ``CartLinesProjection`` on a log with the fold's hard cases (events for a cart before its
/// row exists, a line removed and added again at another price, an add to an existing line at
/// another price, a removal of a line that never was).
@Suite(.serialized) struct FoldedProjectionTests {
    @Test(arguments: [1, 3, 1_000]) func foldedBatchesWriteWhatEventByEventWrites(batchSize: Int) async throws {
        try await withProjectionFixture { f in
            let perEvent = CartLinesProjection(name: f.name("per_event")), folded = CartLinesFoldedProjection(name: f.name("folded"))
            func add(_ cart: Int, _ sku: String, _ quantity: Int, _ price: Int) -> (Int, NewEvent) {
                (cart, CartEvents.added(cart: cart, sku: sku, quantity: quantity, unitPrice: price))
            }
            func remove(_ cart: Int, _ sku: String) -> (Int, NewEvent) { (cart, CartEvents.removed(cart: cart, sku: sku)) }
            func checkOut(_ cart: Int) -> (Int, NewEvent) { (cart, CartEvents.checkedOut(cart: cart)) }
            let first = [
                remove(1, "SKU-9"), checkOut(1), add(1, "SKU-1", 2, 100), add(2, "SKU-1", 1, 5), add(1, "SKU-1", 1, 999),
                remove(3, "SKU-9"), checkOut(2), remove(1, "SKU-1"), remove(2, "SKU-1"), add(1, "SKU-1", 3, 150),
                add(2, "SKU-2", 2, 7), add(1, "SKU-2", 1, 10), checkOut(1),
            ]
            // Then on rows that exist before the batch: cart 1 has events before and after its first add.
            let second = [
                checkOut(1), remove(1, "SKU-2"), add(1, "SKU-3", 2, 30), add(2, "SKU-1", 1, 6), remove(4, "SKU-1"), add(2, "SKU-1", 2, 8),
                remove(2, "SKU-2"), checkOut(1),
            ]
            // Each wave is written while no runtime runs, so that the runtime that then catches up reads
            // it in pages of `batchSize`: with 1,000 a whole wave is one batch.
            // Carts 1 and 2 (3 and 4 never get a row) and their lines: three lines after each wave.
            for wave in [first, second] {
                var last = LogPosition.start
                for (cart, event) in wave {
                    last = try await f.store.append([event], to: StreamID("cart-\(cart)"), expectedVersion: .any).lastPosition!
                }
                let runtime = try f.runtime([perEvent, folded], configuration: f.configuration(batchSize: batchSize))
                let through = last
                try await withRunning(runtime) {
                    for projection in [perEvent.name, folded.name] {
                        try await runtime.waitUntil(projection, hasPassed: through, timeout: .seconds(30))
                    }
                }
                let expected = try await rows(f.client, perEvent.name)
                #expect(expected.count == 5, "\(expected)")
                #expect(try await rows(f.client, folded.name) == expected)
            }
        }
    }

    /// Every row of both tables as text, in key order.
    func rows(_ client: PostgresClient, _ projection: String) async throws -> [String] {
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT format('cart %s %s %s %s %s', cart_id, items, total_cents, checked_out, events) FROM \(projection)_v1.carts
                UNION ALL SELECT format('line %s %s %s %s', cart_id, sku, quantity, unit_price) FROM \(projection)_v1.lines ORDER BY 1
                """)
        var rows: [String] = []
        for try await (row) in try await client.query(query).decode(String.self) { rows.append(row) }
        return rows
    }
}
