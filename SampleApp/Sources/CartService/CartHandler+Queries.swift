import CartDomain
import Foundation
import Kappa
import KappaPostgres
import PostgresNIO

/// The queries: the read model through its stable names, the log for a cart's events, and the
/// service's own state.
extension CartHandler {
    func health(_ input: Operations.Health.Input) async throws -> Operations.Health.Output {
        try await client.query("SELECT 1", logger: logger)
        return .ok(.init(body: .json(.init(status: .ok))))
    }

    func listProducts(_ input: Operations.ListProducts.Input) async throws -> Operations.ListProducts.Output {
        .ok(.init(body: .json(catalogue.products.map { .init(sku: $0.sku, name: $0.name, priceCents: Int64($0.priceCents)) })))
    }

    func listProjections(_ input: Operations.ListProjections.Input) async throws -> Operations.ListProjections.Output {
        let statuses = try await runtime.status().map {
            Components.Schemas.ProjectionStatus(
                name: $0.name, version: $0.version, state: try Self.state($0.state), checkpoint: "\($0.checkpoint)",
                lagEvents: $0.lagEvents, eventsApplied: $0.eventsApplied, deadLetters: $0.deadLetters)
        }
        return .ok(.init(body: .json(statuses)))
    }

    func listCarts(_ input: Operations.ListCarts.Input) async throws -> Operations.ListCarts.Output {
        let limit = input.query.limit ?? 50
        guard (1...500).contains(limit) else { return .badRequest(.init(body: .json(Problem("invalidQuery", field: "limit", "limit is 1 to 500")))) }
        do {
            let rows = try await readModelRows("SELECT to_jsonb(c)::text FROM \(unescaped: readModel.quoted).carts c ORDER BY cart_id LIMIT \(limit)")
            return .ok(.init(body: .json(try rows.map(Self.cart))))
        } catch let unavailable as ReadModelUnavailable {
            return .serviceUnavailable(.init(body: .json(unavailable.problem)))
        }
    }

    func getCart(_ input: Operations.GetCart.Input) async throws -> Operations.GetCart.Output {
        guard let id = Self.cartID(input.path.id) else { return .notFound(.init(body: .json(.noCart(input.path.id)))) }
        if let after = input.query.after {
            guard let position = LogPosition(parsing: after) else {
                return .badRequest(
                    .init(body: .json(Problem("invalidPosition", field: "after", "after must be a position like 1234/56, as commands return it"))))
            }
            do {
                try await runtime.waitUntil(readModel.name, hasPassed: position, timeout: configuration.readYourWritesTimeout)
            } catch let error as ProjectionError where error.code == .timedOut {
                return .gatewayTimeout(.init(body: .json(Problem("notYetVisible", field: "after", "the read model has not reached \(after) yet"))))
            }
        }
        do {
            let rows = try await readModelRows("SELECT to_jsonb(c)::text FROM \(unescaped: readModel.quoted).carts c WHERE cart_id = \(id)")
            guard let found = try rows.first.map(Self.cart) else {
                return .notFound(.init(body: .json(Problem("notFound", "no cart \(id) in the read model"))))
            }
            return .ok(.init(body: .json(found)))
        } catch let unavailable as ReadModelUnavailable {
            return .serviceUnavailable(.init(body: .json(unavailable.problem)))
        }
    }

    /// The cart's events, from the log: what the read model is built from.
    func listCartEvents(_ input: Operations.ListCartEvents.Input) async throws -> Operations.ListCartEvents.Output {
        guard let id = Self.cartID(input.path.id) else { return .notFound(.init(body: .json(.noCart(input.path.id)))) }
        let events = try await store.readStream(try Cart.stream(id), from: 0, limit: 1_000)
        guard !events.isEmpty else { return .notFound(.init(body: .json(Problem("notFound", "no cart \(id) in the log")))) }
        return .ok(
            .init(
                body: .json(
                    events.map {
                        .init(
                            position: "\($0.position)", streamVersion: $0.streamVersion, _type: $0.eventType, recordedAt: $0.recordedAt,
                            payload: String(decoding: $0.payload, as: UTF8.self))
                    })))
    }

    /// Rows of a query on the stable names. Until the first read-model version has caught up with the
    /// log, the names do not exist yet: the query is retried for a few seconds, then refused with
    /// ``ReadModelUnavailable`` (503).
    func readModelRows(_ query: PostgresQuery) async throws -> [String] {
        let deadline = ContinuousClock.now + configuration.readYourWritesTimeout
        while true {
            do {
                var rows: [String] = []
                for try await text in try await client.query(query, logger: logger).decode(String.self) { rows.append(text) }
                return rows
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == PostgresError.Code.undefinedTable.raw && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == PostgresError.Code.undefinedTable.raw {
                throw ReadModelUnavailable()
            }
        }
    }

    /// A read-model row of either version.
    static func cart(_ text: String) throws -> Components.Schemas.Cart {
        struct Row: Decodable {
            var cart_id: String, customer: String, status: String, items: Int, total_cents: Int64
            var seconds_to_checkout: Double?, abandoned_value_cents: Int64?
        }
        let row = try JSONDecoder().decode(Row.self, from: Data(text.utf8))
        guard let status = Components.Schemas.CartStatus(rawValue: row.status) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "cart \(row.cart_id): unknown status \(row.status)"))
        }
        return .init(
            cartId: row.cart_id, customer: row.customer, status: status, items: row.items, totalCents: row.total_cents,
            secondsToCheckout: row.seconds_to_checkout, abandonedValueCents: row.abandoned_value_cents)
    }

    static func state(_ state: ProjectionStatus.State) throws -> Components.Schemas.ProjectionState {
        guard let state = Components.Schemas.ProjectionState(rawValue: state.rawValue) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "openapi.yaml does not list the state \(state.rawValue)"))
        }
        return state
    }
}

/// The stable names do not exist yet: the first read-model version is still being built (503).
struct ReadModelUnavailable: Error {
    var problem: Problem { Problem("readModelUnavailable", "the read model is still being built; try again shortly") }
}

extension LogPosition {
    /// Parses `transaction/position`, as positions are printed.
    init?(parsing text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let transaction = UInt64(parts[0]), let position = Int64(parts[1]) else { return nil }
        self.init(transactionID: transaction, globalPosition: position)
    }
}
