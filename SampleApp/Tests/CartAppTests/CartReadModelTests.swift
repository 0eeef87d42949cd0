import CartDomain
import CartReadModels
import Foundation
import Kappa
import KappaPostgres
import KappaTesting
import Logging
import PostgresNIO
import Testing

/// A deterministic shop history: carts opened, filled, changed, then checked out, abandoned or left open.
struct ShopHistory {
    var carts: [(id: String, events: [CartEvent])] = []

    init(carts count: Int, seed: UInt64) throws {
        var random = SplitMix(seed: seed)
        let catalogue = Catalogue.demo
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for n in 0..<count {
            let id = "c\(n)"
            let decider = Cart.decider(id: id, catalogue: catalogue)
            var state = decider.initialState, events: [CartEvent] = []
            var clock = start.addingTimeInterval(Double(n) * 60)
            func run(_ command: CartCommand) throws {
                let decided = try decider.decide(command, state)
                events += decided
                state = decider.fold(decided, from: state)
                clock = clock.addingTimeInterval(Double(random.next() % 90 + 1))
            }
            try run(.open(customer: "customer-\(n % 17)", at: clock))
            for _ in 0..<(random.next() % 6) {
                let sku = catalogue.products[Int(random.next() % UInt64(catalogue.products.count))].sku
                if case .open(let lines) = state, let line = lines[sku] {
                    if random.next() % 2 == 0 { try run(.removeItem(sku: sku)) } else {
                        try run(.changeQuantity(sku: sku, quantity: min(99, line.quantity + 1)))
                    }
                } else {
                    try run(.addItem(sku: sku, quantity: Int(random.next() % 4) + 1, at: clock))
                }
            }
            switch random.next() % 3 {
            case 0 where state.totalCents > 0: try run(.checkOut(at: clock))
            case 1: try run(.abandon(at: clock))
            default: break
            }
            carts.append((id, events))
        }
    }

    /// Units and revenue per product over checked-out carts, from the domain's own fold.
    var expectedSales: [String: (units: Int, revenue: Int)] {
        var sales: [String: (units: Int, revenue: Int)] = [:]
        for (id, events) in carts {
            let decider = Cart.decider(id: id, catalogue: .demo)
            guard events.contains(where: { if case .checkedOut = $0 { true } else { false } }) else { continue }
            if case .open(let lines) = decider.fold(events.dropLast()) {
                for (sku, line) in lines {
                    sales[sku, default: (0, 0)].units += line.quantity
                    sales[sku, default: (0, 0)].revenue += line.quantity * line.unitPrice
                }
            }
        }
        return sales
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Sample app read models", .serialized)
struct CartReadModelTests {
    let logger = Logger(label: "cart.test")

    @Test func v2IsAMigrationByReplayOfV1sLog() async throws {
        try await TestDatabase.withSchema(prefix: "cart_test") { client, schema in
            let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: logger)
            try await store.migrate()
            let history = try ShopHistory(carts: 300, seed: 42)
            var last = LogPosition.start
            for (id, events) in history.carts {
                let new = try events.map { try CartEvent.registry.encode($0, id: UUID(), recordedAt: Date(timeIntervalSince1970: 1_800_000_000)) }
                last = try await store.append(new, to: Cart.stream(id), expectedVersion: .noStream).lastPosition ?? last
            }
            let end = last
            while try await store.head() < end { try await Task.sleep(for: .milliseconds(20)) }   // the horizon is cluster-wide
            var configuration = ProjectionRuntime.Configuration()
            configuration.schema = "\(schema)_rt"
            configuration.rebuildThreshold = 1
            configuration.rebuildBatchSize = 200
            // A name of this test's own (projection schemas are per database).
            let name = "carts_\(schema.suffix(8))"
            let versions = try ProjectionVersions(log: store, readModels: client, projections: [CartSummaryV1(name: name), CartSummaryV2(name: name)],
                                                  configuration: configuration, logger: logger)
            try await versions.rebuild(name, version: 1)
            try await versions.rebuild(name, version: 2)
            let comparison = try await versions.compare(name, old: 1, new: 2)
            #expect(comparison.isEqual, "\(comparison)")
            #expect(comparison.tablesOnlyInNew == ["cart_lines", "product_sales"])
            try await versions.promote(name, version: 2)

            // What only the log had: sales per product of checked-out carts, as the domain folds them.
            var sales: [String: (Int, Int)] = [:]
            for try await (sku, units, revenue) in try await client.query(PostgresQuery(unsafeSQL: "SELECT sku, units, revenue_cents FROM \(name).product_sales"))
                .decode((String, Int64, Int64).self) { sales[sku] = (Int(units), Int(revenue)) }
            let expected = history.expectedSales
            #expect(sales.count == expected.count)
            for (sku, value) in expected { #expect(sales[sku].map { $0 == value } == true, "\(sku)") }
            var mismatched: Int64 = -1
            for try await count in try await client.query(PostgresQuery(unsafeSQL: """
                SELECT count(*) FROM \(name).carts
                WHERE (status = 'checked_out') <> (seconds_to_checkout IS NOT NULL)
                   OR abandoned_value_cents <> CASE WHEN status = 'abandoned' THEN total_cents ELSE 0 END
                """)).decode(Int64.self) { mismatched = count }
            #expect(mismatched == 0)
            for dropped in [name, "\(name)_v1", "\(name)_v2", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(dropped)\" CASCADE"))
            }
        }
    }
}
