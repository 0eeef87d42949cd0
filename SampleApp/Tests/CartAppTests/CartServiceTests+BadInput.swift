import CartService
import Foundation
import Hummingbird
import HummingbirdTesting
import KappaTesting
import Logging
import PostgresNIO
import Testing

/// Bad input is refused with a 4xx naming what is wrong, and the service goes on answering.
extension CartServiceTests {
    struct ReadModel: Decodable {
        struct Version: Decodable {
            var version: Int
            var lifecycle: String
        }
        var activeVersion: Int?
        var versions: [Version]
    }

    /// The service on a schema of its own, with the HTTP client and its configuration.
    func withService(_ body: @escaping @Sendable (any TestClientProtocol, CartServiceConfiguration, PostgresClient, String) async throws -> Void)
        async throws
    {
        try await TestDatabase.withSchema(prefix: "cart_bad") { client, schema in
            let configuration = serviceConfiguration(schema: schema)
            let app = try await buildApplication(configuration: configuration, logger: Logger(label: "cart.test"))
            try await app.test(.router) { http in try await body(http.checked, configuration, client, schema) }
            for name in [configuration.readModel, "\(configuration.readModel)_v1", "\(configuration.readModel)_v2", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE"))
            }
        }
    }

    func expectProblem(
        _ response: TestResponse, _ status: HTTPResponse.Status, _ code: String, _ field: String?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let problem = try? JSONDecoder().decode(Problem.self, from: Data(response.body.readableBytesView))
        #expect(response.status == status, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
        #expect(problem?.error.code == code, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
        #expect(problem?.error.field == field, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
    }

    /// Adding Int.max to a line of 1 overflowed (the process died): now 422 naming `quantity`.
    @Test func aQuantityThatWouldOverflowIsRefusedAndTheServiceKeepsAnswering() async throws {
        try await withService { http, _, _, _ in
            let opened = try await http.execute(uri: "/carts", method: .post, body: body(#"{"customer": "ada"}"#))
            let cart = try JSONDecoder().decode(Accepted.self, from: Data(opened.body.readableBytesView)).cartId
            let items = "/carts/\(cart)/items"
            #expect(try await http.execute(uri: items, method: .post, body: body(#"{"sku": "MUG", "quantity": 1}"#)).status == .ok)
            for quantity in ["9223372036854775807", "-9223372036854775808", "9223372036854775806"] {
                let response = try await http.execute(uri: items, method: .post, body: body(#"{"sku": "MUG", "quantity": \#(quantity)}"#))
                expectProblem(response, .unprocessableContent, "quantityOutOfRange", "quantity")
                let changed = try await http.execute(uri: "\(items)/MUG", method: .patch, body: body(#"{"quantity": \#(quantity)}"#))
                expectProblem(changed, .unprocessableContent, "quantityOutOfRange", "quantity")
            }
            // Beyond Int: the body does not decode (Foundation's decoder on Linux names no field for it).
            let huge = try await http.execute(uri: items, method: .post, body: body(#"{"sku": "MUG", "quantity": 9223372036854775808}"#))
            #expect(huge.status == .badRequest && String(buffer: huge.body).contains(#""code":"invalidBody""#), "\(String(buffer: huge.body))")

            #expect(try await http.execute(uri: "/health", method: .get).status == .ok)
            let added = try await http.execute(uri: items, method: .post, body: body(#"{"sku": "MUG", "quantity": 2}"#))
            #expect(added.status == .ok)
            let position = try JSONDecoder().decode(Accepted.self, from: Data(added.body.readableBytesView)).position ?? ""
            let read = try await http.execute(uri: "/carts/\(cart)?after=\(position)", method: .get)
            let view = try JSONDecoder().decode(CartView.self, from: Data(read.body.readableBytesView))
            #expect(view.items == 3 && view.totalCents == 3 * 1_450)
        }
    }

    /// A NUL in a customer name was a 500: control characters in any text field are a 422 naming it.
    @Test func aControlCharacterInATextFieldIsRefusedNamingTheField() async throws {
        try await withService { http, _, client, schema in
            let opened = try await http.execute(uri: "/carts", method: .post, body: body(#"{"customer": "ada"}"#))
            let cart = try JSONDecoder().decode(Accepted.self, from: Data(opened.body.readableBytesView)).cartId
            let before = try await eventCount(schema, client: client)
            for text in [#"a\u0000b"#, #"\u001b[2J"#, #"ada\n"#, #"a\u007f"#, "a\u{85}b", #"a\u009f"#] {
                let customer = try await http.execute(uri: "/carts", method: .post, body: body(#"{"customer": "\#(text)"}"#))
                expectProblem(customer, .unprocessableContent, "controlCharacter", "customer")
                let sku = try await http.execute(uri: "/carts/\(cart)/items", method: .post, body: body(#"{"sku": "MUG\#(text)", "quantity": 1}"#))
                expectProblem(sku, .unprocessableContent, "controlCharacter", "sku")
            }
            for method in [HTTPRequest.Method.patch, .delete] {
                let path = try await http.execute(uri: "/carts/\(cart)/items/MUG%00", method: method, body: body(#"{"quantity": 1}"#))
                #expect(path.status == .unprocessableContent, "\(String(buffer: path.body))")
                let problem = try? JSONDecoder().decode(Problem.self, from: Data(path.body.readableBytesView))
                #expect(problem?.error.field == "sku")
            }
            #expect(try await eventCount(schema, client: client) == before, "nothing appended by a refused request")
            let fine = try await http.execute(uri: "/carts", method: .post, body: body(#"{"customer": "Zoë 李"}"#))
            #expect(fine.status == .created)
        }
    }

    /// The service speaks JSON only: a body is read as JSON whatever its content type (`curl -d` sends
    /// a form's), and the answer is JSON whatever `Accept` asks for — never a 500 after the command ran.
    @Test func anyContentTypeOrAcceptIsAnsweredInJSON() async throws {
        try await withService { http, _, client, schema in
            let headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .accept: "text/plain"]
            let opened = try await http.execute(uri: "/carts", method: .post, headers: headers, body: body(#"{"customer": "ada"}"#))
            #expect(opened.status == .created, "\(String(buffer: opened.body))")
            #expect(opened.headers[.contentType] == "application/json; charset=utf-8" || opened.headers[.contentType] == "application/json")
            #expect(try await eventCount(schema, client: client) == 1)
            let cart = try JSONDecoder().decode(Accepted.self, from: Data(opened.body.readableBytesView)).cartId
            let checkout = try await http.execute(uri: "/carts/\(cart)/checkout", method: .post, headers: [.accept: "text/html"])
            expectProblem(checkout, .conflict, "emptyCart", nil)
        }
    }

    /// `compare?old=0&new=0` was a 500: versions are integers from 1, else 400 naming the parameter.
    @Test func compareRefusesVersionsThatAreNotPositiveIntegers() async throws {
        try await withService { http, configuration, _, _ in
            let asOperator = operatorHeaders(configuration)
            for (query, field) in [
                ("old=0&new=0", "old"), ("old=-1&new=2", "old"), ("old=1&new=0", "new"), ("old=x&new=1", "old"),
                ("old=1&new=99999999999999999999", "new"), ("new=1", "old"),
            ] {
                let response = try await http.execute(uri: "/read-model/compare?\(query)", method: .get, headers: asOperator)
                expectProblem(response, .badRequest, "invalidQuery", field)
            }
            let unknown = try await http.execute(uri: "/read-model/compare?old=1&new=9", method: .get, headers: asOperator)
            expectProblem(unknown, .notFound, "unknownVersion", "version")
            expectProblem(try await http.execute(uri: "/carts?limit=x", method: .get), .badRequest, "invalidQuery", "limit")
        }
    }

    /// The operator requests were open to anyone: now they need `Authorization: Bearer <operator token>`.
    @Test func operatorRequestsNeedTheOperatorToken() async throws {
        let token = CartServiceConfiguration.randomToken()
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit) && token != CartServiceConfiguration.randomToken())
        try await withService { http, configuration, _, _ in
            let asOperator = operatorHeaders(configuration)
            let requests: [(String, HTTPRequest.Method)] = [
                ("/read-model/versions/2/build", .post), ("/read-model/compare?old=1&new=2", .get),
                ("/read-model/versions/2/promote", .post), ("/read-model/rollback", .post),
            ]
            let refused: [HTTPFields] = [
                [:], [.authorization: "Bearer nope"], [.authorization: "Bearer \(configuration.operatorToken)x"],
                [.authorization: "Basic \(configuration.operatorToken)"], [.authorization: configuration.operatorToken],
            ]
            for (uri, method) in requests {
                for headers in refused {
                    let response = try await http.execute(uri: uri, method: method, headers: headers)
                    expectProblem(response, .unauthorized, "operatorTokenRequired", nil)
                    #expect(response.headers[.wwwAuthenticate] == "Bearer", "\(uri)")
                }
            }
            let status = try JSONDecoder().decode(ReadModel.self, from: Data(try await http.execute(uri: "/read-model", method: .get).body.readableBytesView))
            #expect(!status.versions.contains { $0.version == 2 }, "a refused build started nothing")

            // v1 serves first: a v2 promoted before v1 was ever active leaves no retired v1 to roll back to.
            try await eventually("v1 serves") {
                let body = try await http.execute(uri: "/read-model", method: .get).body
                return try JSONDecoder().decode(ReadModel.self, from: Data(body.readableBytesView)).activeVersion == 1
            }
            // With the token (the scheme's case does not matter), the migration goes through.
            let built = try await http.execute(
                uri: "/read-model/versions/2/build", method: .post,
                headers: [.authorization: "bearer \(configuration.operatorToken)"])
            #expect(built.status == .accepted, "\(String(buffer: built.body))")
            try await eventually("v2 has caught up", timeout: .seconds(60)) {
                let body = try await http.execute(uri: "/read-model", method: .get).body
                return try JSONDecoder().decode(ReadModel.self, from: Data(body.readableBytesView)).versions.first { $0.version == 2 }?.lifecycle == "caught_up"
            }
            #expect(try await http.execute(uri: "/read-model/compare?old=1&new=2", method: .get, headers: asOperator).status == .ok)
            #expect(try await http.execute(uri: "/read-model/versions/2/promote", method: .post, headers: asOperator).status == .ok)
            let rolledBack = try await http.execute(uri: "/read-model/rollback", method: .post, headers: asOperator)
            #expect(
                rolledBack.status == .ok && String(buffer: rolledBack.body).contains(#""activeVersion":1"#),
                "\(rolledBack.status): \(String(buffer: rolledBack.body))")
        }
    }
}
