import CartDomain
import Foundation
import Kappa
import KappaPostgres
import Logging
import PostgresNIO

/// The HTTP API as `openapi.yaml` describes it (``APIProtocol`` is generated from it): commands
/// append to the log and answer with their position; queries read the read model through its stable
/// names (`cart_summary.*`), optionally after waiting for a position.
struct CartHandler: APIProtocol {
    let store: PostgresEventStore
    let client: PostgresClient
    let runtime: ProjectionRuntime
    let configuration: CartServiceConfiguration
    /// The read model's stable-names schema, validated.
    let readModel: SQLIdentifier
    let logger: Logger
    let catalogue = Catalogue.demo

    // MARK: Commands

    func openCart(_ input: Operations.OpenCart.Input) async throws -> Operations.OpenCart.Output {
        let body =
            switch input.body {
            case .json(let body): body
            }
        if CartError.hasControlCharacter(body.customer) { return .unprocessableContent(.init(body: .json(.controlCharacter("customer")))) }
        let id = UUID().uuidString.lowercased()
        do {
            return .created(.init(body: .json(try await handle(.open(customer: body.customer, at: Date()), cart: id))))
        } catch let error as CartError {
            // A fresh id cannot be open already: what is left is the customer's rule.
            return .unprocessableContent(.init(body: .json(Problem("\(error.code)", field: error.field, error.message))))
        }
    }

    func addItem(_ input: Operations.AddItem.Input) async throws -> Operations.AddItem.Output {
        let body =
            switch input.body {
            case .json(let body): body
            }
        if CartError.hasControlCharacter(body.sku) { return .unprocessableContent(.init(body: .json(.controlCharacter("sku")))) }
        return try await command(.addItem(sku: body.sku, quantity: Int(body.quantity), at: Date()), cart: input.path.id)
    }

    func changeQuantity(_ input: Operations.ChangeQuantity.Input) async throws -> Operations.ChangeQuantity.Output {
        let body =
            switch input.body {
            case .json(let body): body
            }
        if CartError.hasControlCharacter(input.path.sku) { return .unprocessableContent(.init(body: .json(.controlCharacter("sku")))) }
        return try await command(.changeQuantity(sku: input.path.sku, quantity: Int(body.quantity)), cart: input.path.id)
    }

    func removeItem(_ input: Operations.RemoveItem.Input) async throws -> Operations.RemoveItem.Output {
        if CartError.hasControlCharacter(input.path.sku) { return .unprocessableContent(.init(body: .json(.controlCharacter("sku")))) }
        return try await command(.removeItem(sku: input.path.sku), cart: input.path.id)
    }

    func checkOut(_ input: Operations.CheckOut.Input) async throws -> Operations.CheckOut.Output {
        try await command(.checkOut(at: Date()), cart: input.path.id)
    }

    func abandonCart(_ input: Operations.AbandonCart.Input) async throws -> Operations.AbandonCart.Output {
        try await command(.abandon(at: Date()), cart: input.path.id)
    }

    /// Runs `command` on the cart `id` (from the path) and answers as any command does.
    func command<Output: CommandOutput>(_ command: CartCommand, cart id: String) async throws -> Output {
        guard let id = Self.cartID(id) else { return .notFound(.init(body: .json(.noCart(id)))) }
        do {
            return .ok(.init(body: .json(try await handle(command, cart: id))))
        } catch let error as CartError {
            return .refused(error)
        }
    }

    /// Loads the cart, decides, appends; the answer names the cart and the last event's position.
    func handle(_ command: CartCommand, cart id: String) async throws -> Components.Schemas.Accepted {
        let handler = CommandHandler(
            decider: Cart.decider(id: id, catalogue: catalogue), registry: CartEvent.registry, store: store, logger: logger)
        let result = try await handler.handle(command, on: try Cart.stream(id))
        return .init(cartId: id, position: result.positions.last.map { "\($0)" }, events: result.events.count)
    }

    /// A cart id from a path, in the form the log uses (lower case); nil when it is not a UUID.
    static func cartID(_ text: String) -> String? {
        UUID(uuidString: text).map { $0.uuidString.lowercased() }
    }
}
