import CartDomain
import Foundation
import Kappa
import KappaPostgres

/// Version 2: v1's columns plus what only the log still has — when the first item went in, how long
/// the cart took to check out, the value an abandoned cart left behind — and a new table of units and
/// revenue per product (checked-out carts only), with each cart's lines. Moving from v1 to v2 is a
/// migration by replay.
public struct CartSummaryV2: Projection {
    public let name: String
    public let version = 2
    /// - Parameter name: the stable name readers query (`<name>.carts`); `cart_summary` in the app.
    public init(name: String = "cart_summary") { self.name = name }

    public var eventTypes: Set<String>? { CartEvent.registry.eventTypes }
    public var ordering: ProjectionOrdering { .perStream }
    public var unloggedWhileBuilding: Bool { true }

    public var setupSQL: String {
        """
        CREATE TABLE carts (
            cart_id                text        PRIMARY KEY,
            customer               text        NOT NULL DEFAULT '',
            status                 text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'checked_out', 'abandoned')),
            items                  integer     NOT NULL DEFAULT 0,
            total_cents            bigint      NOT NULL DEFAULT 0,
            first_item_at          timestamptz,
            checked_out_at         timestamptz,
            seconds_to_checkout    double precision GENERATED ALWAYS AS (extract(epoch FROM checked_out_at - first_item_at)) STORED,
            abandoned_value_cents  bigint      NOT NULL DEFAULT 0
        );
        CREATE TABLE cart_lines (
            cart_id     text    NOT NULL,
            sku         text    NOT NULL,
            quantity    integer NOT NULL,
            unit_price  bigint  NOT NULL,
            PRIMARY KEY (cart_id, sku)
        );
        CREATE TABLE product_sales (
            sku            text   PRIMARY KEY,
            units          bigint NOT NULL,
            revenue_cents  bigint NOT NULL
        );
        """
    }

    public var indexSQL: String { "CREATE INDEX carts_status ON carts (status)" }

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        var rows: [String: CartRowChange] = [:]
        var lines: [LineKey: (quantity: Int, price: Int)?] = [:] // the batch's last word per line; nil: removed
        var checkedOut: [String] = []
        for recorded in events {
            guard let event = try CartEvent.registry.decode(recorded)?.event else { continue }
            try CartRowChange.fold(event, into: &rows)
            switch event {
            case .itemAdded(let e): lines[LineKey(cart: e.cartId, sku: e.sku)] = (e.quantity, e.unitPrice)
            case .quantityChanged(let e): lines[LineKey(cart: e.cartId, sku: e.sku)] = (e.quantity, e.unitPrice)
            case .itemRemoved(let e): lines[LineKey(cart: e.cartId, sku: e.sku)] = .some(nil)
            case .checkedOut(let e): checkedOut.append(e.cartId)
            default: break
            }
        }
        let schema = context.schema
        if let upsert = CartRowChange.upsert(rows, table: "\(schema).carts") { try await context.execute(upsert) }
        let ids = rows.keys.sorted()
        let changes = ids.map { rows[$0]! }
        if !ids.isEmpty {
            try await context.execute(
                """
                UPDATE \(unescaped: schema).carts AS c SET
                    first_item_at = coalesce(c.first_item_at, CASE WHEN r.f >= 0 THEN to_timestamp(r.f) END),
                    checked_out_at = coalesce(CASE WHEN r.co >= 0 THEN to_timestamp(r.co) END, c.checked_out_at),
                    abandoned_value_cents = c.abandoned_value_cents + r.a
                FROM unnest(\(ids)::text[], \(changes.map { $0.firstItemAt?.timeIntervalSince1970 ?? -1 })::float8[],
                            \(changes.map { $0.checkedOutAt?.timeIntervalSince1970 ?? -1 })::float8[],
                            \(changes.map(\.abandonedValue))::int8[]) AS r(id, f, co, a)
                WHERE c.cart_id = r.id
                """)
        }
        let keys = lines.keys.sorted()
        let kept = keys.filter { lines[$0]! != nil }, removed = keys.filter { lines[$0]! == nil }
        if !kept.isEmpty {
            try await context.execute(
                """
                INSERT INTO \(unescaped: schema).cart_lines AS l (cart_id, sku, quantity, unit_price)
                SELECT * FROM unnest(\(kept.map(\.cart))::text[], \(kept.map(\.sku))::text[], \(kept.map { lines[$0]!!.quantity })::int4[],
                                     \(kept.map { lines[$0]!!.price })::int8[])
                ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = excluded.quantity, unit_price = excluded.unit_price
                """)
        }
        if !removed.isEmpty {
            try await context.execute(
                """
                DELETE FROM \(unescaped: schema).cart_lines l USING unnest(\(removed.map(\.cart))::text[], \(removed.map(\.sku))::text[]) AS r(c, s)
                WHERE l.cart_id = r.c AND l.sku = r.s
                """)
        }
        // A checked-out cart never changes again: its lines now are its lines at checkout.
        if !checkedOut.isEmpty {
            try await context.execute(
                """
                INSERT INTO \(unescaped: schema).product_sales AS p (sku, units, revenue_cents)
                SELECT sku, sum(quantity), sum(quantity * unit_price) FROM \(unescaped: schema).cart_lines
                WHERE cart_id = ANY(\(checkedOut.sorted())::text[]) GROUP BY sku ORDER BY sku
                ON CONFLICT (sku) DO UPDATE SET units = p.units + excluded.units, revenue_cents = p.revenue_cents + excluded.revenue_cents
                """)
        }
    }
}

/// A line of a cart.
struct LineKey: Hashable, Comparable {
    let cart: String
    let sku: String
    static func < (a: LineKey, b: LineKey) -> Bool { (a.cart, a.sku) < (b.cart, b.sku) }
}
