import CartDomain
import CartReadModels
import CartService
import Foundation
import Kappa
import KappaPostgres
import KappaTesting
import Logging
import PostgresNIO
import Testing

extension ShopHistory {
    /// Units and revenue per product over the checked-out carts among the first `count`, from the domain's own fold.
    func expectedSales(carts count: Int) -> [String: (units: Int, revenue: Int)] {
        var sales: [String: (units: Int, revenue: Int)] = [:]
        for index in 0..<count {
            let (id, events) = cart(index)
            let decider = Cart.decider(id: id, catalogue: .demo)
            guard case .checkedOut = events.last?.event else { continue }
            if case .open(let lines) = decider.fold(events.dropLast().map(\.event)) {
                for (sku, line) in lines {
                    sales[sku, default: (0, 0)].units += line.quantity
                    sales[sku, default: (0, 0)].revenue += line.quantity * line.unitPrice
                }
            }
        }
        return sales
    }
}

@Suite("Sample app read models", .serialized)
struct CartReadModelTests {
    let logger = Logger(label: "cart.test")

    @Test func v2IsAMigrationByReplayOfV1sLog() async throws {
        try await TestDatabase.withSchema(prefix: "cart_test") { client, schema in
            let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: logger)
            try await store.migrate()
            // The seed command's history and seeder: 300 carts, then the same again, which appends nothing.
            let history = ShopHistory(seed: 42, start: Date(timeIntervalSince1970: 1_800_000_000))
            let seeded = try await CartSeeder(store: store, history: history).seed(carts: 300)
            let events = (0..<300).reduce(0) { $0 + history.cart($1).events.count }
            #expect(seeded.cartsAppended == 300 && seeded.eventsAppended == events)
            #expect(events > 300 * 4)
            let again = try await CartSeeder(store: store, history: history).seed(carts: 300)
            #expect(again.cartsAppended == 0 && again.eventsAppended == 0)
            let end = try #require(seeded.lastPosition)
            try await eventually("the horizon passed the seed") { try await store.head() >= end } // the horizon is cluster-wide
            var configuration = ProjectionRuntime.Configuration()
            configuration.schema = "\(schema)_rt"
            configuration.rebuildThreshold = 1
            configuration.rebuildBatchSize = 200
            // A name of this test's own (projection schemas are per database).
            let name = "carts_\(schema.suffix(8))"
            let versions = try ProjectionVersions(
                log: store, readModels: client, projections: [CartSummaryV1(name: name), CartSummaryV2(name: name)],
                configuration: configuration, logger: logger)
            try await versions.rebuild(name, version: 1)
            try await versions.rebuild(name, version: 2)
            let comparison = try await versions.compare(name, old: 1, new: 2)
            #expect(comparison.isEqual, "\(comparison)")
            #expect(comparison.tablesOnlyInNew == ["cart_lines", "product_sales"])
            try await versions.promote(name, version: 2)

            // What only the log had: sales per product of checked-out carts, as the domain folds them.
            var sales: [String: (Int, Int)] = [:]
            for try await (sku, units, revenue) in try await client.query(
                PostgresQuery(unsafeSQL: "SELECT sku, units, revenue_cents FROM \(name).product_sales")
            )
            .decode((String, Int64, Int64).self) { sales[sku] = (Int(units), Int(revenue)) }
            let expected = history.expectedSales(carts: 300)
            #expect(sales.count == expected.count)
            for (sku, value) in expected { #expect(sales[sku].map { $0 == value } == true, "\(sku)") }
            var mismatched: Int64 = -1
            for try await count in try await client.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT count(*) FROM \(name).carts
                        WHERE (status = 'checked_out') <> (seconds_to_checkout IS NOT NULL)
                           OR abandoned_value_cents <> CASE WHEN status = 'abandoned' THEN total_cents ELSE 0 END
                        """)
            ).decode(Int64.self) { mismatched = count }
            #expect(mismatched == 0)
            for dropped in [name, "\(name)_v1", "\(name)_v2", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(dropped)\" CASCADE"))
            }
        }
    }

    /// Events from a log written by other code may hold any `Int`: a sum or product that overflows
    /// throws (a poison event for the runtime) instead of trapping the process.
    @Test func eventsWhoseNumbersOverflowAreRefusedNotTrappedOn() throws {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        func added(_ quantity: Int, _ price: Int) -> CartEvent {
            .itemAdded(ItemAddedToCart(cartId: "c1", sku: "MUG", quantity: quantity, unitPrice: price, addedAt: t0))
        }
        let batches: [[CartEvent]] = [
            [added(.max, 2)],
            [added(.max, 1), added(1, 1)],
            [added(1, 1), .quantityChanged(ItemQuantityChanged(cartId: "c1", sku: "MUG", quantity: .min, previousQuantity: 1, unitPrice: 1))],
            [.itemRemoved(ItemRemovedFromCart(cartId: "c1", sku: "MUG", quantity: .min, unitPrice: 1))],
        ]
        for batch in batches {
            let recorded = try batch.enumerated().map { index, event in
                let stored = try CartEvent.registry.encode(event, id: UUID(), recordedAt: t0)
                return RecordedEvent(
                    id: stored.id, streamID: try Cart.stream("c1"), streamVersion: Int64(index + 1),
                    position: LogPosition(transactionID: 1, globalPosition: Int64(index + 1)),
                    eventType: stored.eventType.rawValue, schemaVersion: stored.schemaVersion,
                    payload: stored.payload, metadata: .init(), recordedAt: t0)
            }
            #expect(throws: CartReadModelError.self, "\(batch)") { try CartSummaryV1().statement(for: recorded, schema: "s") }
        }
        #expect(try CartSummaryV1().statement(for: [], schema: "s") == nil)
    }
}
