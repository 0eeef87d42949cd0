import Kappa
import KappaPostgres

/// A cart read model of two tables, written several statements an event as a new user writes one:
/// an add inserts the cart's row if new and upserts its line, a removal deletes the line, and the
/// cart's totals are then recomputed from its lines; a checkout flags the cart. Three statements for
/// most events: what a live batch costs in round trips when sent statement by statement.
public struct CartLinesProjection: Projection {
    public let name: String
    public let version = 1

    public init(name: String) {
        self.name = name
    }

    public var setupSQL: String {
        """
        CREATE TABLE carts (
            cart_id text PRIMARY KEY, items bigint NOT NULL, total_cents bigint NOT NULL,
            checked_out boolean NOT NULL, events bigint NOT NULL);
        CREATE TABLE lines (
            cart_id text, sku text, quantity bigint NOT NULL, unit_price bigint NOT NULL, PRIMARY KEY (cart_id, sku));
        """
    }

    public var eventTypes: Set<String>? { ["ItemAddedToCart", "ItemRemovedFromCart", "CartCheckedOut"] }

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        let decoder = PayloadDecoder(), schema = context.schema
        for event in events {
            let cart: String
            switch event.eventType {
            case "ItemAddedToCart":
                let e = try decoder.decode(CartEvents.ItemAdded.self, from: event.payload)
                cart = e.cartId
                try await context.execute("INSERT INTO \(unescaped: schema).carts VALUES (\(cart), 0, 0, false, 0) ON CONFLICT DO NOTHING")
                try await context.execute(
                    """
                    INSERT INTO \(unescaped: schema).lines VALUES (\(cart), \(e.sku), \(e.quantity), \(e.unitPrice))
                    ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = lines.quantity + excluded.quantity
                    """)
            case "ItemRemovedFromCart":
                let e = try decoder.decode(CartEvents.ItemRemoved.self, from: event.payload)
                cart = e.cartId
                try await context.execute("DELETE FROM \(unescaped: schema).lines WHERE cart_id = \(cart) AND sku = \(e.sku)")
            default:
                let e = try decoder.decode(CartEvents.CheckedOut.self, from: event.payload)
                try await context.execute("UPDATE \(unescaped: schema).carts SET (checked_out, events) = (true, events + 1) WHERE cart_id = \(e.cartId)")
                continue
            }
            try await context.execute(
                """
                UPDATE \(unescaped: schema).carts c SET events = events + 1,
                    (items, total_cents) = (SELECT coalesce(sum(quantity), 0), coalesce(sum(quantity * unit_price), 0)
                                            FROM \(unescaped: schema).lines l WHERE l.cart_id = c.cart_id)
                WHERE cart_id = \(cart)
                """)
        }
    }
}
