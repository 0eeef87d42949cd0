import CartDomain
import Foundation
import Kappa
import KappaPostgres
import PostgresNIO

/// Version 1 of the shop's read model: one row per cart — customer, status, items, total.
/// Folds each batch in memory into one upsert — a ``SingleStatementProjection``, so each live batch is
/// that upsert and its checkpoint in one round trip; per-stream order is enough, so it rebuilds in parallel.
public struct CartSummaryV1: SingleStatementProjection {
    public let name: String
    public let version = 1
    /// - Parameter name: the stable name readers query (`<name>.carts`); `cart_summary` in the app.
    public init(name: String = "cart_summary") { self.name = name }

    public var eventTypes: Set<String>? { CartEvent.registry.eventTypes }
    public var ordering: ProjectionOrdering { .perStream }

    public var setupSQL: String {
        """
        CREATE TABLE carts (
            cart_id      text    PRIMARY KEY,
            customer     text    NOT NULL DEFAULT '',
            status       text    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'checked_out', 'abandoned')),
            items        integer NOT NULL DEFAULT 0,
            total_cents  bigint  NOT NULL DEFAULT 0
        );
        """
    }

    public var indexSQL: String { "CREATE INDEX carts_status ON carts (status)" }

    public func statement(for events: [RecordedEvent], schema: String) throws -> PostgresQuery? {
        var rows: [String: CartRowChange] = [:]
        for recorded in events {
            guard let event = try CartEvent.registry.decode(recorded)?.event else { continue }
            try CartRowChange.fold(event, into: &rows)
        }
        return CartRowChange.upsert(rows, table: "\(schema).carts")
    }
}

/// What a batch does to each cart's row: deltas and the latest status.
struct CartRowChange {
    var customer: String?
    var status: String?
    var items = 0
    var total = 0
    // For v2.
    var firstItemAt: Date?
    var checkedOutAt: Date?
    var abandonedValue = 0

    /// Adds the event to its cart's change. Numbers from the log may be any `Int`: an overflow
    /// throws (the runtime's poison-event policy then applies) instead of trapping the process.
    static func fold(_ event: CartEvent, into rows: inout [String: CartRowChange]) throws {
        // One dictionary access an event: `rows[id, default:]` passed inout is looked up once.
        func change(_ row: inout CartRowChange, _ body: (inout CartRowChange) throws -> Void) rethrows { try body(&row) }
        switch event {
        case .opened(let e):
            change(&rows[e.cartId, default: .init()]) { $0.customer = e.customer }
        case .itemAdded(let e):
            let value = try checked(e.quantity.multipliedReportingOverflow(by: e.unitPrice), e.cartId)
            try change(&rows[e.cartId, default: .init()]) {
                $0.items = try checked($0.items.addingReportingOverflow(e.quantity), e.cartId)
                $0.total = try checked($0.total.addingReportingOverflow(value), e.cartId)
                if $0.firstItemAt == nil { $0.firstItemAt = e.addedAt }
            }
        case .quantityChanged(let e):
            let delta = try checked(e.quantity.subtractingReportingOverflow(e.previousQuantity), e.cartId)
            let value = try checked(delta.multipliedReportingOverflow(by: e.unitPrice), e.cartId)
            try change(&rows[e.cartId, default: .init()]) {
                $0.items = try checked($0.items.addingReportingOverflow(delta), e.cartId)
                $0.total = try checked($0.total.addingReportingOverflow(value), e.cartId)
            }
        case .itemRemoved(let e):
            let value = try checked(e.quantity.multipliedReportingOverflow(by: e.unitPrice), e.cartId)
            try change(&rows[e.cartId, default: .init()]) {
                $0.items = try checked($0.items.subtractingReportingOverflow(e.quantity), e.cartId)
                $0.total = try checked($0.total.subtractingReportingOverflow(value), e.cartId)
            }
        case .checkedOut(let e):
            change(&rows[e.cartId, default: .init()]) {
                $0.status = "checked_out"
                $0.checkedOutAt = e.checkedOutAt
            }
        case .abandoned(let e):
            change(&rows[e.cartId, default: .init()]) {
                $0.status = "abandoned"
                $0.abandonedValue = e.valueCents
            }
        }
    }

    /// The result of a `…ReportingOverflow` operation, or an error naming the cart.
    static func checked(_ result: (partialValue: Int, overflow: Bool), _ cartId: String) throws -> Int {
        guard !result.overflow else { throw CartReadModelError(cartId: cartId) }
        return result.partialValue
    }

    /// One multi-row upsert of v1's columns, rows locked in key order; `nil` for no rows.
    static func upsert(_ rows: [String: CartRowChange], table: String) -> PostgresQuery? {
        guard !rows.isEmpty else { return nil }
        let ids = rows.keys.sorted()
        let changes = ids.map { rows[$0]! }
        return """
            INSERT INTO \(unescaped: table) AS c (cart_id, customer, status, items, total_cents)
            SELECT id, cu, st, i, t
            FROM unnest(\(ids)::text[], \(changes.map { $0.customer ?? "" })::text[], \(changes.map { $0.status ?? "open" })::text[],
                        \(changes.map(\.items))::int8[], \(changes.map(\.total))::int8[]) AS r(id, cu, st, i, t)
            ON CONFLICT (cart_id) DO UPDATE SET
                customer = CASE WHEN excluded.customer <> '' THEN excluded.customer ELSE c.customer END,
                status = CASE WHEN excluded.status <> 'open' THEN excluded.status ELSE c.status END,
                items = c.items + excluded.items, total_cents = c.total_cents + excluded.total_cents
            """
    }
}

/// A cart's events hold numbers whose sum or product does not fit an `Int` (only a log written by
/// other code can: the cart's decider refuses them).
public struct CartReadModelError: Error, Sendable, CustomStringConvertible {
    public var cartId: String
    public var description: String { "cart \(cartId): a quantity or value in its events overflows an Int" }
}
