import Foundation
import Kappa
import KappaPostgres
import PostgresNIO

/// Version 2 of the cart read model: the v1 columns plus how many items were ever added to each
/// cart, and a new table of units sold per product — data only the log still has. Needs only each
/// stream's order, so it rebuilds in parallel partitions; its writes commute (`x = x + n`) and lock
/// rows in key order.
public struct CartSummaryV2Projection: Projection {
    public let name: String
    public let version: Int
    public let writer: String
    public let delayPerBatch: Duration

    public let ordering: ProjectionOrdering

    public init(
        name: String = "cart_summary", version: Int = 2, writer: String = "", delayPerBatch: Duration = .zero,
        ordering: ProjectionOrdering = .perStream
    ) {
        self.ordering = ordering
        self.name = name
        self.version = version
        self.writer = writer
        self.delayPerBatch = delayPerBatch
    }

    public var eventTypes: Set<String>? { ["ItemAddedToCart", "ItemRemovedFromCart", "CartCheckedOut"] }
    public var unloggedWhileBuilding: Bool { true }

    public var setupSQL: String {
        """
        CREATE TABLE carts (
            cart_id      text PRIMARY KEY,
            items        integer NOT NULL,
            total_cents  bigint  NOT NULL,
            checked_out  boolean NOT NULL,
            events       bigint  NOT NULL,
            written_by   text    NOT NULL,
            items_added  bigint  NOT NULL
        );
        CREATE TABLE product_sales (sku text PRIMARY KEY, units bigint NOT NULL);
        CREATE TABLE about AS SELECT \(version) AS version;
        """
    }

    public var indexSQL: String { "CREATE INDEX carts_checked_out ON carts (checked_out) WHERE checked_out" }

    struct Row {
        var items = 0
        var total = 0
        var checkedOut = false
        var events = 0
        var added = 0
    }

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        let decoder = PayloadDecoder()
        var rows: [String: Row] = [:]
        var sold: [String: Int] = [:]
        for event in events {
            switch event.eventType {
            case "ItemAddedToCart":
                let e = try decoder.decode(CartEvents.ItemAdded.self, from: event.payload)
                rows[e.cartId, default: Row()].items += e.quantity
                rows[e.cartId, default: Row()].total += e.quantity * e.unitPrice
                rows[e.cartId, default: Row()].events += 1
                rows[e.cartId, default: Row()].added += e.quantity
                sold[e.sku, default: 0] += e.quantity
            case "ItemRemovedFromCart":
                let e = try decoder.decode(CartEvents.ItemRemoved.self, from: event.payload)
                rows[e.cartId, default: Row()].items -= e.quantity
                rows[e.cartId, default: Row()].total -= e.quantity * e.unitPrice
                rows[e.cartId, default: Row()].events += 1
                sold[e.sku, default: 0] -= e.quantity
            default:
                let e = try decoder.decode(CartEvents.CheckedOut.self, from: event.payload)
                rows[e.cartId, default: Row()].checkedOut = true
                rows[e.cartId, default: Row()].events += 1
            }
        }
        if delayPerBatch > .zero {
            let seconds = Double(delayPerBatch.components.seconds) + Double(delayPerBatch.components.attoseconds) / 1e18
            try await context.execute("SELECT pg_sleep(\(seconds)) /* \(unescaped: name) */")
        }
        let ids = rows.keys.sorted()
        try await context.execute(
            """
            INSERT INTO \(unescaped: context.schema).carts AS c (cart_id, items, total_cents, checked_out, events, written_by, items_added)
            SELECT id, i, t, co, n, \(writer), a FROM unnest(\(ids)::text[], \(ids.map { rows[$0]!.items })::int8[],
                \(ids.map { rows[$0]!.total })::int8[], \(ids.map { rows[$0]!.checkedOut })::bool[], \(ids.map { rows[$0]!.events })::int8[],
                \(ids.map { rows[$0]!.added })::int8[]) AS r(id, i, t, co, n, a)
            ON CONFLICT (cart_id) DO UPDATE SET items = c.items + excluded.items, total_cents = c.total_cents + excluded.total_cents,
                checked_out = c.checked_out OR excluded.checked_out, events = c.events + excluded.events,
                written_by = excluded.written_by, items_added = c.items_added + excluded.items_added
            """)
        guard !sold.isEmpty else { return }
        let skus = sold.keys.sorted()
        try await context.execute(
            """
            INSERT INTO \(unescaped: context.schema).product_sales AS p (sku, units)
            SELECT s, u FROM unnest(\(skus)::text[], \(skus.map { sold[$0]! })::int8[]) AS r(s, u)
            ON CONFLICT (sku) DO UPDATE SET units = p.units + excluded.units
            """)
    }
}
