import Foundation
import Kappa
import KappaPostgres
import PostgresNIO

/// The cart events the projection tests and benchmarks write: the sample app's shape.
///
/// A copy, not the sample's `CartDomain`: the framework's package never depends on the sample (the
/// sample depends on it), and these payloads stay fixed so that benchmark figures compare across runs.
public enum CartEvents {
    public struct ItemAdded: Codable, Sendable, Equatable {
        public var cartId: String
        public var sku: String
        public var quantity: Int
        public var unitPrice: Int
        public init(cartId: String, sku: String, quantity: Int, unitPrice: Int) {
            (self.cartId, self.sku, self.quantity, self.unitPrice) = (cartId, sku, quantity, unitPrice)
        }
    }
    public struct ItemRemoved: Codable, Sendable, Equatable {
        public var cartId: String
        public var sku: String
        public var quantity: Int
        public var unitPrice: Int
        public init(cartId: String, sku: String, quantity: Int, unitPrice: Int) {
            (self.cartId, self.sku, self.quantity, self.unitPrice) = (cartId, sku, quantity, unitPrice)
        }
    }
    public struct CheckedOut: Codable, Sendable, Equatable {
        public var cartId: String
        public init(cartId: String) { self.cartId = cartId }
    }

    /// An `ItemAddedToCart` event; `sku: "POISON"` makes ``CartSummaryProjection`` reject it.
    public static func added(cart: Int, sku: String = "SKU-1", quantity: Int = 1, unitPrice: Int = 100) -> NewEvent {
        encode("ItemAddedToCart", ItemAdded(cartId: "c\(cart)", sku: sku, quantity: quantity, unitPrice: unitPrice))
    }

    public static func removed(cart: Int, sku: String = "SKU-1", quantity: Int = 1, unitPrice: Int = 100) -> NewEvent {
        encode("ItemRemovedFromCart", ItemRemoved(cartId: "c\(cart)", sku: sku, quantity: quantity, unitPrice: unitPrice))
    }

    public static func checkedOut(cart: Int) -> NewEvent {
        encode("CartCheckedOut", CheckedOut(cartId: "c\(cart)"))
    }

    static func encode(_ type: EventTypeName, _ payload: some Encodable) -> NewEvent {
        // Only fixed, encodable shapes come here.
        NewEvent(id: UUID(), eventType: type, schemaVersion: 1, payload: try! JSONEncoder().encode(payload), recordedAt: Date())
    }

    /// Appends `count` events spread over `carts` carts (adds, some removals, a checkout per cart
    /// at its end), `perAppend` events per append, streams `cart-<n>`. Returns the last append's position.
    @discardableResult
    public static func seed(_ store: some EventStore, carts: Int, eventsPerCart: Int) async throws -> LogPosition {
        var last = LogPosition.start
        for cart in 0..<carts {
            var events: [NewEvent] = []
            for n in 0..<eventsPerCart - 1 {
                events.append(
                    n % 5 == 4
                        ? removed(cart: cart, sku: "SKU-\(n - 1)", unitPrice: 100 + n - 1)
                        : added(cart: cart, sku: "SKU-\(n)", quantity: 1 + n % 3, unitPrice: 100 + n))
            }
            events.append(checkedOut(cart: cart))
            last = try await store.append(events, to: StreamID("cart-\(cart)"), expectedVersion: .any).lastPosition ?? last
        }
        return last
    }
}

/// One row per cart: item count, total, checked out, events applied — folded in memory per batch
/// into one multi-row upsert.
public struct CartSummaryProjection: Projection, PoisonPolicyProviding {
    public let name: String
    public let version: Int
    /// Written into every row, so tests can tell which runner wrote.
    public let writer: String
    /// Held open inside each batch's transaction, so tests can crash or stop a runner mid-batch.
    public let delayPerBatch: Duration
    public let poisonEventPolicy: PoisonEventPolicy
    /// Items with this SKU are rejected (a poison event); `nil` accepts everything.
    public let poisonSKU: String?

    /// ``ProjectionOrdering/perStream`` lets a rebuild run in parallel partitions.
    public let ordering: ProjectionOrdering

    public init(
        name: String = "cart_summary", version: Int = 1, writer: String = "", delayPerBatch: Duration = .zero,
        poisonEventPolicy: PoisonEventPolicy = .stop, poisonSKU: String? = "POISON", ordering: ProjectionOrdering = .global
    ) {
        self.ordering = ordering
        self.poisonSKU = poisonSKU
        self.name = name
        self.version = version
        self.writer = writer
        self.delayPerBatch = delayPerBatch
        self.poisonEventPolicy = poisonEventPolicy
    }

    public var eventTypes: Set<String>? { ["ItemAddedToCart", "ItemRemovedFromCart", "CartCheckedOut"] }

    public var setupSQL: String {
        """
        CREATE TABLE carts (
            cart_id      text PRIMARY KEY,
            items        integer NOT NULL,
            total_cents  bigint  NOT NULL,
            checked_out  boolean NOT NULL,
            events       bigint  NOT NULL,
            written_by   text    NOT NULL
        );
        CREATE TABLE about AS SELECT \(version) AS version;
        """
    }

    public struct Rejected: Error, CustomStringConvertible {
        public var description: String
    }

    struct Row {
        var items = 0
        var total = 0
        var checkedOut = false
        var events = 0
    }

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        let rows = try fold(events)
        if delayPerBatch > .zero {
            let seconds = Double(delayPerBatch.components.seconds) + Double(delayPerBatch.components.attoseconds) / 1e18
            try await context.execute("SELECT pg_sleep(\(seconds)) /* \(unescaped: name) */")
        }
        try await context.execute(upsert(rows, schema: context.schema))
    }

    /// The batch folded in memory: one change per cart.
    func fold(_ events: [RecordedEvent]) throws -> [String: Row] {
        let decoder = PayloadDecoder()
        var rows: [String: Row] = [:]
        // One dictionary access an event: `rows[id, default:]` passed inout is looked up once.
        func change(_ row: inout Row, _ body: (inout Row) -> Void) { body(&row) }
        for event in events {
            switch event.eventType {
            case "ItemAddedToCart":
                let e = try decoder.decode(CartEvents.ItemAdded.self, from: event.payload)
                if e.sku == poisonSKU { throw Rejected(description: "cart \(e.cartId): SKU \(e.sku) is refused") }
                change(&rows[e.cartId, default: Row()]) {
                    $0.items += e.quantity
                    $0.total += e.quantity * e.unitPrice
                    $0.events += 1
                }
            case "ItemRemovedFromCart":
                let e = try decoder.decode(CartEvents.ItemRemoved.self, from: event.payload)
                change(&rows[e.cartId, default: Row()]) {
                    $0.items -= e.quantity
                    $0.total -= e.quantity * e.unitPrice
                    $0.events += 1
                }
            default:
                let e = try decoder.decode(CartEvents.CheckedOut.self, from: event.payload)
                change(&rows[e.cartId, default: Row()]) {
                    $0.checkedOut = true
                    $0.events += 1
                }
            }
        }
        return rows
    }

    /// One multi-row upsert of the folded changes.
    func upsert(_ rows: [String: Row], schema: String) -> PostgresQuery {
        let ids = Array(rows.keys)
        return """
            INSERT INTO \(unescaped: schema).carts AS c (cart_id, items, total_cents, checked_out, events, written_by)
            SELECT id, i, t, co, n, \(writer) FROM unnest(\(ids)::text[], \(ids.map { rows[$0]!.items })::int8[],
                \(ids.map { rows[$0]!.total })::int8[], \(ids.map { rows[$0]!.checkedOut })::bool[], \(ids.map { rows[$0]!.events })::int8[])
                AS r(id, i, t, co, n)
            ON CONFLICT (cart_id) DO UPDATE SET items = c.items + excluded.items, total_cents = c.total_cents + excluded.total_cents,
                checked_out = c.checked_out OR excluded.checked_out, events = c.events + excluded.events, written_by = excluded.written_by
            """
    }
}

/// ``CartSummaryProjection`` as a ``SingleStatementProjection``: the same fold and upsert, applied
/// live in one round trip with its checkpoint. (No `delayPerBatch`: there is no second statement.)
public struct CartSummaryInOneStatement: SingleStatementProjection, PoisonPolicyProviding {
    public let base: CartSummaryProjection

    public init(_ base: CartSummaryProjection) {
        precondition(base.delayPerBatch == .zero, "a single-statement batch has no room for a delay")
        self.base = base
    }

    public var name: String { base.name }
    public var version: Int { base.version }
    public var setupSQL: String { base.setupSQL }
    public var eventTypes: Set<String>? { base.eventTypes }
    public var ordering: ProjectionOrdering { base.ordering }
    public var poisonEventPolicy: PoisonEventPolicy { base.poisonEventPolicy }

    public func statement(for events: [RecordedEvent], schema: String) throws -> PostgresQuery? {
        let rows = try base.fold(events)
        return rows.isEmpty ? nil : base.upsert(rows, schema: schema)
    }
}
