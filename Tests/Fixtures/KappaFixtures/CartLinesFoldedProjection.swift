import Kappa
import KappaPostgres

/// ``CartLinesProjection``'s read model (the same tables, the same rows) with each batch folded in
/// memory into at most five set-based statements, however many events it holds: what a handler that
/// receives the batch, not one event, makes possible.
///
/// The fold keeps the per-event handler's meaning exactly: an event before a cart's first add counts
/// only where the cart's row already exists (the per-event `UPDATE` finds no row otherwise); a line
/// removed and added again starts from the add after the removal, at that add's price.
public struct CartLinesFoldedProjection: Projection {
    public let name: String
    public let version = 1

    public init(name: String) {
        self.name = name
    }

    public var setupSQL: String { CartLinesProjection(name: name).setupSQL }
    public var eventTypes: Set<String>? { CartLinesProjection(name: name).eventTypes }

    /// What a batch does to one cart's row.
    struct Cart {
        /// Events and a checkout before the cart's first add in the batch: they apply only to a row that exists.
        var eventsBefore = 0, checkedOutBefore = false
        /// From the first add on (the row exists then, created by the add if new).
        var added = false, eventsAfter = 0, checkedOutAfter = false
        /// An add or a removal: the totals are recomputed from the lines.
        var linesChanged = false
    }

    /// What a batch does to one line: removed (at some point), then added to (`quantity` in all, the
    /// first add's price: a new line's, as an existing line keeps its own).
    struct Line {
        var removed = false, added = false, quantity = 0, unitPrice = 0
    }

    struct Fold {
        var carts: [String: Cart] = [:]
        var lines: [LineKey: Line] = [:]
    }

    struct LineKey: Hashable {
        let cart: String, sku: String
    }

    func fold(_ events: [RecordedEvent]) throws -> Fold {
        let decoder = PayloadDecoder()
        var fold = Fold()
        func count(_ cart: inout Cart, checkout: Bool) {
            if cart.added {
                cart.eventsAfter += 1
                cart.checkedOutAfter = cart.checkedOutAfter || checkout
            } else {
                cart.eventsBefore += 1
                cart.checkedOutBefore = cart.checkedOutBefore || checkout
            }
        }
        for event in events {
            switch event.eventType {
            case "ItemAddedToCart":
                let e = try decoder.decode(CartEvents.ItemAdded.self, from: event.payload)
                fold.carts[e.cartId, default: Cart()].added = true
                count(&fold.carts[e.cartId]!, checkout: false)
                fold.carts[e.cartId]!.linesChanged = true
                let key = LineKey(cart: e.cartId, sku: e.sku)
                var line = fold.lines[key] ?? Line()
                if !line.added { (line.added, line.unitPrice) = (true, e.unitPrice) }
                line.quantity += e.quantity
                fold.lines[key] = line
            case "ItemRemovedFromCart":
                let e = try decoder.decode(CartEvents.ItemRemoved.self, from: event.payload)
                count(&fold.carts[e.cartId, default: Cart()], checkout: false)
                fold.carts[e.cartId]!.linesChanged = true
                fold.lines[LineKey(cart: e.cartId, sku: e.sku)] = Line(removed: true)
            default:
                let e = try decoder.decode(CartEvents.CheckedOut.self, from: event.payload)
                count(&fold.carts[e.cartId, default: Cart()], checkout: true)
            }
        }
        return fold
    }

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        let fold = try fold(events), schema = context.schema
        // Rows that existed before the batch: the events before each cart's first add.
        let before = fold.carts.filter { $0.value.eventsBefore > 0 }
        if !before.isEmpty {
            try await context.execute(
                """
                UPDATE \(unescaped: schema).carts c SET events = c.events + b.n, checked_out = c.checked_out OR b.co
                FROM unnest(\(Array(before.keys))::text[], \(before.values.map(\.eventsBefore))::int8[], \(before.values.map(\.checkedOutBefore))::bool[])
                    AS b(id, n, co)
                WHERE c.cart_id = b.id
                """)
        }
        // Carts with an add: created if new, then the events from the first add on.
        let opened = fold.carts.filter(\.value.added)
        if !opened.isEmpty {
            try await context.execute(
                """
                INSERT INTO \(unescaped: schema).carts AS c
                SELECT id, 0, 0, co, n FROM unnest(\(Array(opened.keys))::text[], \(opened.values.map(\.eventsAfter))::int8[],
                    \(opened.values.map(\.checkedOutAfter))::bool[]) AS a(id, n, co)
                ON CONFLICT (cart_id) DO UPDATE SET events = c.events + excluded.events, checked_out = c.checked_out OR excluded.checked_out
                """)
        }
        let removed = fold.lines.filter(\.value.removed).map(\.key)
        if !removed.isEmpty {
            try await context.execute(
                """
                DELETE FROM \(unescaped: schema).lines l USING unnest(\(removed.map(\.cart))::text[], \(removed.map(\.sku))::text[]) AS r(id, sku)
                WHERE l.cart_id = r.id AND l.sku = r.sku
                """)
        }
        let added = fold.lines.filter(\.value.added)
        if !added.isEmpty {
            try await context.execute(
                """
                INSERT INTO \(unescaped: schema).lines AS l
                SELECT * FROM unnest(\(added.keys.map(\.cart))::text[], \(added.keys.map(\.sku))::text[],
                    \(added.values.map(\.quantity))::int8[], \(added.values.map(\.unitPrice))::int8[])
                ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = l.quantity + excluded.quantity
                """)
        }
        let changed = fold.carts.filter(\.value.linesChanged).map(\.key)
        if !changed.isEmpty {
            try await context.execute(
                """
                UPDATE \(unescaped: schema).carts c SET (items, total_cents) =
                    (SELECT coalesce(sum(quantity), 0), coalesce(sum(quantity * unit_price), 0) FROM \(unescaped: schema).lines l WHERE l.cart_id = c.cart_id)
                WHERE c.cart_id = ANY(\(changed)::text[])
                """)
        }
    }
}
