import CartDomain
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Kappa
import KappaPostgres
import KappaTesting
import Logging
import PostgresNIO
import Testing

@testable import CartService

@Suite("Sample app: the HTTP API", .serialized)
struct CartServiceTests {
    struct Accepted: Decodable {
        var cartId: String
        var position: String?
        var events: Int
    }
    struct CartView: Decodable {
        var cartId: String
        var customer: String
        var status: String
        var items: Int
        var totalCents: Int
    }
    struct Problem: Decodable {
        struct Detail: Decodable {
            var code: String
            var field: String?
            var message: String
        }
        var error: Detail
    }

    func body(_ json: String) -> ByteBuffer { ByteBuffer(string: json) }

    @Test func shopThroughTheAPIWithReadYourWritesAndClearErrors() async throws {
        try await TestDatabase.withSchema(prefix: "cart_api") { client, schema in
            let configuration = serviceConfiguration(schema: schema)
            let app = try await buildApplication(configuration: configuration, logger: Logger(label: "cart.test"))
            try await app.test(.router) { router in
                let http = router.checked
                let opened = try await http.execute(uri: "/carts", method: .post, body: body(#"{"customer": "ada"}"#))
                #expect(opened.status == .created)
                let cart = try JSONDecoder().decode(Accepted.self, from: Data(opened.body.readableBytesView))
                let added = try await http.execute(uri: "/carts/\(cart.cartId)/items", method: .post, body: body(#"{"sku": "MUG", "quantity": 2}"#))
                #expect(added.status == .ok)
                let position = try JSONDecoder().decode(Accepted.self, from: Data(added.body.readableBytesView)).position!
                // Read your own write: the query waits until the read model has passed the command's position.
                let read = try await http.execute(uri: "/carts/\(cart.cartId)?after=\(position)", method: .get)
                #expect(read.status == .ok)
                let view = try JSONDecoder().decode(CartView.self, from: Data(read.body.readableBytesView))
                #expect(view.items == 2 && view.totalCents == 2_900 && view.customer == "ada" && view.status == "open")

                // Bad requests: 4xx naming the field, and nothing appended.
                let before = try await eventCount(schema, client: client)
                let cases: [(String, HTTPRequest.Method, String, HTTPResponse.Status, String, String?)] = [
                    ("/carts/\(cart.cartId)/items", .post, #"{"sku": "NOPE", "quantity": 1}"#, .unprocessableContent, "unknownProduct", "sku"),
                    ("/carts/\(cart.cartId)/items", .post, #"{"sku": "MUG", "quantity": 0}"#, .unprocessableContent, "quantityOutOfRange", "quantity"),
                    ("/carts/\(cart.cartId)/items", .post, #"{"sku": "MUG", "quantity": 100}"#, .unprocessableContent, "quantityOutOfRange", "quantity"),
                    ("/carts/\(cart.cartId)/items", .post, #"{"sku": "MUG", "quantity": "two"}"#, .badRequest, "invalidBody", "quantity"),
                    ("/carts/\(cart.cartId)/items", .post, #"{"sku": "MUG""#, .badRequest, "invalidBody", nil),
                    ("/carts/\(cart.cartId)/items", .post, #"{"quantity": 1}"#, .badRequest, "invalidBody", "sku"),
                    ("/carts", .post, #"{"customer": "   "}"#, .unprocessableContent, "invalidCustomer", "customer"),
                    ("/carts/\(UUID().uuidString)/checkout", .post, "", .notFound, "notOpened", nil),
                ]
                for (uri, method, json, status, code, field) in cases {
                    let response = try await http.execute(uri: uri, method: method, body: body(json))
                    #expect(response.status == status, "\(uri) \(json)")
                    let problem = try? JSONDecoder().decode(Problem.self, from: Data(response.body.readableBytesView))
                    #expect(problem?.error.code == code, "\(uri) \(json): \(String(buffer: response.body))")
                    #expect(problem?.error.field == field, "\(uri) \(json)")
                }
                let oversized = try await http.execute(
                    uri: "/carts", method: .post,
                    body: body(#"{"customer": "\#(String(repeating: "x", count: 20_000))"}"#))
                #expect(oversized.status == .contentTooLarge)
                #expect(try await eventCount(schema, client: client) == before, "nothing appended by a bad request")

                // Change a quantity, add and remove a line; the summary follows.
                let tea = try await http.execute(uri: "/carts/\(cart.cartId)/items", method: .post, body: body(#"{"sku": "TEA-GREEN", "quantity": 1}"#))
                #expect(tea.status == .ok)
                let changed = try await http.execute(uri: "/carts/\(cart.cartId)/items/MUG", method: .patch, body: body(#"{"quantity": 3}"#))
                #expect(changed.status == .ok)
                let removed = try await http.execute(uri: "/carts/\(cart.cartId)/items/TEA-GREEN", method: .delete)
                #expect(removed.status == .ok)
                let last = try JSONDecoder().decode(Accepted.self, from: Data(removed.body.readableBytesView)).position!
                let summary = try JSONDecoder().decode(
                    CartView.self, from: Data(try await http.execute(uri: "/carts/\(cart.cartId)?after=\(last)", method: .get).body.readableBytesView))
                #expect(summary.items == 3 && summary.totalCents == 3 * 1_450)
                let gone = try await http.execute(uri: "/carts/\(cart.cartId)/items/TEA-GREEN", method: .delete)
                #expect(gone.status == .unprocessableContent && String(buffer: gone.body).contains("itemNotInCart"))

                let checkout = try await http.execute(uri: "/carts/\(cart.cartId)/checkout", method: .post)
                #expect(checkout.status == .ok)
                let again = try await http.execute(uri: "/carts/\(cart.cartId)/items", method: .post, body: body(#"{"sku": "MUG", "quantity": 1}"#))
                #expect(again.status == .conflict)
                let health = try await http.execute(uri: "/health", method: .get)
                #expect(health.status == .ok)
            }
            for name in [configuration.readModel, "\(configuration.readModel)_v1", "\(configuration.readModel)_v2", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE"))
            }
        }
    }

    @Test func theSpecDescribesEveryOperationAndItsOperatorRequests() throws {
        let operations = OpenAPISpecification.shared.operations
        #expect(operations.count == 17)
        #expect(Set(operations.map(\.id)).count == operations.count && !operations.contains { $0.id.isEmpty })
        // The operations the token guards are those the spec marks with the operator's security scheme.
        #expect(Set(operations.filter(\.isOperatorOnly).map(\.id)) == OperatorTokenMiddleware.operations)
        // The integer parameters the error middleware names when they do not decode are the spec's.
        let spec = OpenAPISpecification.shared
        var integers: [String: [BadRequest.Parameter]] = [:]
        for operation in operations {
            for parameter in (operation.value["parameters"]?.array ?? []).map(spec.resolved)
            where spec.resolved(parameter["schema"] ?? .null)["type"] == .string("integer") {
                integers[operation.id, default: []].append(
                    .init(
                        name: parameter["name"]?.string ?? "", location: .init(rawValue: parameter["in"]?.string ?? "") ?? .path,
                        isRequired: parameter["required"] == .bool(true)))
            }
        }
        #expect(integers == BadRequest.integerParameters)
        // The checker itself catches what it must: an undocumented status, a missing field, an extra one.
        let json: HTTPFields = [.contentType: "application/json"]
        #expect(spec.problems(.get, "/health", status: 200, headers: json, body: Data(#"{"status":"ok"}"#.utf8)).isEmpty)
        #expect(!spec.problems(.get, "/health", status: 418, headers: json, body: Data(#"{"status":"ok"}"#.utf8)).isEmpty)
        #expect(!spec.problems(.get, "/health", status: 200, headers: json, body: Data(#"{"status":"fine"}"#.utf8)).isEmpty)
        let cart = #"{"cartId":"\#(UUID())","customer":"ada","status":"open","items":1,"totalCents":5}"#
        #expect(spec.problems(.get, "/carts/\(UUID())", status: 200, headers: json, body: Data(cart.utf8)).isEmpty)
        #expect(!spec.problems(.get, "/carts/x", status: 200, headers: json, body: Data(cart.replacingOccurrences(of: #""items":1,"#, with: "").utf8)).isEmpty)
        #expect(
            !spec.problems(.get, "/carts/x", status: 200, headers: json, body: Data(cart.replacingOccurrences(of: "}", with: #","extra":1}"#).utf8)).isEmpty)
        #expect(!spec.problems(.post, "/read-model/rollback", status: 401, headers: json, body: Data(#"{"error":{"code":"x","message":"y"}}"#.utf8)).isEmpty)
        var problems: [String] = []
        spec.validate(.number(1), against: .object(["oneOf": .array([])]), at: "x", into: &problems)
        spec.validate(.number(1), against: .object(["$ref": .string("#/components/schemas/Nope")]), at: "y", into: &problems)
        #expect(problems.count == 2, "a keyword the checker does not know, and a $ref that does not resolve, are problems: \(problems)")
    }

    @Test func everyDocumentedOperationAnswersOneOfItsDocumentedStatuses() async throws {
        let operations = OpenAPISpecification.shared.operations
        try await TestDatabase.withSchema(prefix: "cart_api") { client, schema in
            var configuration = serviceConfiguration(schema: schema)
            configuration.readYourWritesTimeout = .milliseconds(200)
            let app = try await buildApplication(configuration: configuration, logger: Logger(label: "cart.test"))
            try await app.test(.router) { router in
                let http = router.checked
                // Each documented operation exists and answers one of its documented codes.
                for operation in operations {
                    let (path, method, codes) = (operation.path, operation.method, operation.statuses)
                    let uri = path.replacingOccurrences(of: "{id}", with: UUID().uuidString).replacingOccurrences(of: "{sku}", with: "MUG")
                        .replacingOccurrences(of: "{version}", with: "9")
                    let response = try await http.execute(
                        uri: uri, method: HTTPRequest.Method(rawValue: method.uppercased())!,
                        body: ByteBuffer(string: #"{"customer": "x", "sku": "MUG", "quantity": 1}"#))
                    let text = String(buffer: response.body)
                    #expect(codes.contains(Int(response.status.code)), "\(method) \(path): \(response.status) \(text)")
                    // A 404 from a handler names the cart; a route that does not exist has no such code.
                    if response.status == .notFound {
                        #expect(
                            [#""code":"notOpened""#, #""code":"notFound""#, #""code":"unknownVersion""#].contains { text.contains($0) },
                            "\(method) \(path) is not routed: \(text)")
                    }
                }
            }
            for name in [configuration.readModel, "\(configuration.readModel)_v1", "\(configuration.readModel)_v2", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE"))
            }
        }
    }

    func store(_ schema: String, client: PostgresClient) throws -> PostgresEventStore {
        try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: Logger(label: "cart.test"))
    }

    /// Every event in the log, committed or not yet below the horizon (which the head is): what a
    /// refused request must leave unchanged.
    func eventCount(_ schema: String, client: PostgresClient) async throws -> Int64 {
        try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \"\(schema)\".events")).collect().first?.decode(Int64.self) ?? -1
    }
}

/// The service's configuration for a test: the log in `schema`, the runtime's tables in `<schema>_rt`,
/// and a read model named after the schema (projection schemas exist once per database).
func serviceConfiguration(schema: String) -> CartServiceConfiguration {
    var configuration = CartServiceConfiguration(database: TestDatabase.configuration())
    configuration.logSchema = schema
    configuration.runtimeSchema = "\(schema)_rt"
    configuration.readModel = "carts_\(schema.suffix(8))"
    // Generous: the first read waits for the runtime to start, and CI runs the suites side by side on two cores.
    configuration.readYourWritesTimeout = .seconds(30)
    return configuration
}

/// The header operator requests (read-model build, compare, promote, rollback) send to a service built from `configuration`.
func operatorHeaders(_ configuration: CartServiceConfiguration) -> HTTPFields {
    [.authorization: "Bearer \(configuration.operatorToken)"]
}
