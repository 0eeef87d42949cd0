import CartDomain
import Foundation
import Hummingbird
import Kappa
import KappaPostgres
import Logging
import PostgresNIO

/// The HTTP API: commands append to the log and answer with their position; queries read the read
/// model through its stable names (`cart_summary.*`), optionally after waiting for a position.
struct CartController: Sendable {
    let store: PostgresEventStore
    let client: PostgresClient
    let runtime: ProjectionRuntime
    let configuration: CartServiceConfiguration
    /// The read model's stable-names schema, validated.
    let readModel: SQLIdentifier
    let logger: Logger
    let catalogue = Catalogue.demo

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("health") { _, _ in try await health() }
        router.get("products") { _, _ in try json(catalogue.products) }
        router.get("projections") { _, _ in try await projections() }
        router.post("carts") { request, _ in
            let body = try await decode(CartAPI.OpenCart.self, request)
            return try await handle(.open(customer: body.customer, at: Date()), cart: UUID().uuidString.lowercased(), created: true)
        }
        router.get("carts") { request, _ in try await list(limit: request.uri.queryParameters.get("limit")) }
        router.get("carts/:id") { request, context in
            try await cart(try cartID(context), after: request.uri.queryParameters.get("after"))
        }
        router.post("carts/:id/items") { request, context in
            let body = try await decode(CartAPI.AddItem.self, request)
            return try await handle(.addItem(sku: body.sku, quantity: body.quantity, at: Date()), cart: try cartID(context))
        }
        router.patch("carts/:id/items/:sku") { request, context in
            let body = try await decode(CartAPI.ChangeQuantity.self, request)
            return try await handle(.changeQuantity(sku: try sku(context), quantity: body.quantity), cart: try cartID(context))
        }
        router.delete("carts/:id/items/:sku") { _, context in
            try await handle(.removeItem(sku: try sku(context)), cart: try cartID(context))
        }
        router.post("carts/:id/checkout") { _, context in try await handle(.checkOut(at: Date()), cart: try cartID(context)) }
        router.post("carts/:id/abandon") { _, context in try await handle(.abandon(at: Date()), cart: try cartID(context)) }
        addReadModelRoutes(to: router)
    }

    // MARK: Commands

    func handle(_ command: CartCommand, cart id: String, created: Bool = false) async throws -> Response {
        let handler = CommandHandler(
            decider: Cart.decider(id: id, catalogue: catalogue), registry: CartEvent.registry,
            store: store, logger: logger)
        do {
            let result = try await handler.handle(command, on: try Cart.stream(id))
            let body = CartAPI.Accepted(cartId: id, position: result.positions.last.map { "\($0)" }, events: result.events.count)
            return try json(body, status: created ? .created : .ok)
        } catch let error as CartError {
            let status: HTTPResponse.Status =
                switch error.code {
                case .notOpened: .notFound
                case .cartClosed, .emptyCart, .alreadyOpened, .totalOutOfRange: .conflict
                default: .unprocessableContent
                }
            return try problem(status, code: "\(error.code)", field: error.field, message: error.message)
        }
    }

    // MARK: Queries

    func cart(_ id: String, after: String?) async throws -> Response {
        if let after {
            guard let position = LogPosition(parsing: after) else {
                return try problem(
                    .badRequest, code: "invalidPosition", field: "after", message: "after must be a position like 1234/56, as commands return it")
            }
            do {
                try await runtime.waitUntil(readModel.name, hasPassed: position, timeout: configuration.readYourWritesTimeout)
            } catch let error as ProjectionError where error.code == .timedOut {
                return try problem(.gatewayTimeout, code: "notYetVisible", field: "after", message: "the read model has not reached \(after) yet")
            }
        }
        let rows = try await readModelRows("SELECT to_jsonb(c)::text FROM \(unescaped: readModel.quoted).carts c WHERE cart_id = \(id)")
        guard let found = try rows.first.map(Self.view) else {
            return try problem(.notFound, code: "notFound", field: nil, message: "no cart \(id) in the read model")
        }
        return try json(found)
    }

    func list(limit text: String?) async throws -> Response {
        guard let limit = text.map({ Int($0) }) ?? 50, (1...500).contains(limit) else {
            return try problem(.badRequest, code: "invalidLimit", field: "limit", message: "limit is 1 to 500")
        }
        let rows = try await readModelRows("SELECT to_jsonb(c)::text FROM \(unescaped: readModel.quoted).carts c ORDER BY cart_id LIMIT \(limit)")
        return try json(try rows.map(Self.view))
    }

    /// Rows of a query on the stable names. Until the first read-model version has caught up with the
    /// log, the names do not exist yet: the query is retried for a few seconds, then answered 503.
    func readModelRows(_ query: PostgresQuery) async throws -> [String] {
        let deadline = ContinuousClock.now + configuration.readYourWritesTimeout
        while true {
            do {
                var rows: [String] = []
                for try await text in try await client.query(query, logger: logger).decode(String.self) { rows.append(text) }
                return rows
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
                throw HTTPError(.serviceUnavailable, message: "the read model is still being built; try again shortly")
            }
        }
    }

    func projections() async throws -> Response {
        let views = try await runtime.status().map {
            CartAPI.ProjectionView(
                name: $0.name, version: $0.version, state: $0.state.rawValue, checkpoint: "\($0.checkpoint)",
                lagEvents: $0.lagEvents, eventsApplied: $0.eventsApplied, deadLetters: $0.deadLetters)
        }
        return try json(views)
    }

    func health() async throws -> Response {
        try await client.query("SELECT 1", logger: logger)
        return try json(["status": "ok"])
    }

    /// A read-model row of either version.
    static func view(_ text: String) throws -> CartAPI.CartView {
        struct Row: Decodable {
            var cart_id: String, customer: String, status: String, items: Int, total_cents: Int64
            var seconds_to_checkout: Double?, abandoned_value_cents: Int64?
        }
        let row = try JSONDecoder().decode(Row.self, from: Data(text.utf8))
        return CartAPI.CartView(
            cartId: row.cart_id, customer: row.customer, status: row.status, items: row.items, totalCents: row.total_cents,
            secondsToCheckout: row.seconds_to_checkout, abandonedValueCents: row.abandoned_value_cents)
    }

    // MARK: Input and output

    func cartID(_ context: BasicRequestContext) throws -> String {
        let id = try context.parameters.require("id")
        guard let uuid = UUID(uuidString: id) else {
            throw HTTPError(.notFound, message: "no cart \(id): cart ids are UUIDs")
        }
        return uuid.uuidString.lowercased()
    }

    /// The SKU in the path, free of control characters.
    func sku(_ context: BasicRequestContext) throws -> String {
        let sku = try context.parameters.require("sku")
        try checkText(sku, field: "sku")
        return sku
    }

    /// The body as `T`, at most `maximumBodyBytes`; a bad body is a 400 naming the field, a text
    /// field with a control character a 422 naming it.
    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let buffer = try await request.body.collect(upTo: configuration.maximumBodyBytes)
        let body: T
        do {
            body = try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw BadRequest(error)
        }
        try checkTexts(of: body)
        return body
    }
}

/// A request body that does not decode, as a 400 naming the field.
struct BadRequest: HTTPResponseError {
    let field: String?
    let message: String

    init(_ error: DecodingError) {
        switch error {
        case .keyNotFound(let key, _): (field, message) = (key.stringValue, "\(key.stringValue) is required")
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let name = context.codingPath.last?.stringValue
            (field, message) = (name, "\(name ?? "the body") must be \(type == Int.self ? "an integer" : type == String.self ? "a string" : "\(type)")")
        case .dataCorrupted(let context):
            // Foundation's decoder on Linux also says this, with no field, of a number its field cannot hold.
            (field, message) = (context.codingPath.last?.stringValue, "the body is not valid JSON, or holds a number its field cannot hold")
        @unknown default:
            (field, message) = (nil, "the body cannot be read")
        }
    }

    var status: HTTPResponse.Status { .badRequest }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try problem(.badRequest, code: "invalidBody", field: field, message: message)
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Response(
        status: status, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}

func problem(_ status: HTTPResponse.Status, code: String, field: String?, message: String) throws -> Response {
    try json(CartAPI.ErrorBody(error: .init(code: code, field: field, message: message)), status: status)
}
