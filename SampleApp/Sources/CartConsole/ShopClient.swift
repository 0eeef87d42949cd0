import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The cart service's HTTP API, as the console uses it.
struct ShopClient: Sendable {
    let baseURL: URL
    /// Sent as `Authorization: Bearer <token>` with the operator requests.
    let operatorToken: String?
    let session: URLSession

    init(baseURL: URL, operatorToken: String? = nil) {
        self.baseURL = baseURL
        self.operatorToken = operatorToken
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        self.session = URLSession(configuration: configuration)
    }

    struct Product: Decodable, Sendable, Equatable {
        var sku: String
        var name: String
        var priceCents: Int
    }
    struct Cart: Decodable, Sendable, Equatable {
        var cartId: String, customer: String, status: String, items: Int, totalCents: Int
        var secondsToCheckout: Double?, abandonedValueCents: Int?
    }
    struct Event: Decodable, Sendable, Equatable {
        var position: String
        var streamVersion: Int
        var type: String
        var payload: String
    }
    struct Accepted: Decodable, Sendable {
        var cartId: String
        var position: String?
    }
    struct ReadModel: Decodable, Sendable, Equatable {
        struct Rebuild: Decodable, Sendable, Equatable {
            var eventsDone: Int
            var eventsTotal: Int
            var eventsPerSecond: Int
        }
        struct Version: Decodable, Sendable, Equatable {
            var version: Int, lifecycle: String, state: String, checkpoint: String
            var eventsApplied: Int, lagEvents: Int, deadLetters: Int
            var failedError: String?, rebuild: Rebuild?
        }
        var name: String, activeVersion: Int?, availableVersions: [Int], versions: [Version]
    }
    struct Comparison: Decodable, Sendable, Equatable {
        struct Table: Decodable, Sendable, Equatable {
            var name: String, rowsInOld: Int, rowsInNew: Int, rowsOnlyInOld: Int, rowsOnlyInNew: Int
            var columnsOnlyInOld: [String], columnsOnlyInNew: [String]
        }
        var oldVersion: Int, newVersion: Int, samePosition: Bool, differingRows: Int
        var tables: [Table], tablesOnlyInOld: [String], tablesOnlyInNew: [String]
    }

    /// A 4xx or 5xx answer, with the service's error code and message; or no answer at all.
    struct Failure: Error, Sendable, CustomStringConvertible {
        var status: Int?
        var code: String
        var message: String
        var description: String { status.map { "\($0) \(code): \(message)" } ?? message }
    }

    func products() async throws -> [Product] { try await get("products") }
    func carts(limit: Int) async throws -> [Cart] { try await get("carts?limit=\(limit)") }
    /// The cart from the read model; with `after`, once the read model has passed that position.
    func cart(_ id: String, after: String? = nil) async throws -> Cart? {
        do { return try await get("carts/\(id)" + (after.map { "?after=\($0)" } ?? "")) } catch let failure as Failure where failure.status == 404 {
            return nil
        }
    }
    func events(_ id: String) async throws -> [Event] {
        do { return try await get("carts/\(id)/events") } catch let failure as Failure where failure.status == 404 { return [] }
    }
    func readModel() async throws -> ReadModel { try await get("read-model") }

    func open(customer: String) async throws -> Accepted { try await send("POST", "carts", ["customer": customer]) }
    func add(_ cart: String, sku: String, quantity: Int) async throws -> Accepted {
        try await send("POST", "carts/\(cart)/items", AddItem(sku: sku, quantity: quantity))
    }
    func remove(_ cart: String, sku: String) async throws -> Accepted { try await send("DELETE", "carts/\(cart)/items/\(sku)", Empty?.none) }
    func checkOut(_ cart: String) async throws -> Accepted { try await send("POST", "carts/\(cart)/checkout", Empty?.none) }
    func abandon(_ cart: String) async throws -> Accepted { try await send("POST", "carts/\(cart)/abandon", Empty?.none) }
    // The operator requests: they send the operator token.
    func build(version: Int) async throws {
        let _: Ignored = try await send("POST", "read-model/versions/\(version)/build", Empty?.none, asOperator: true)
    }
    func compare(old: Int, new: Int) async throws -> Comparison { try await get("read-model/compare?old=\(old)&new=\(new)", asOperator: true) }
    func promote(version: Int) async throws {
        let _: Ignored = try await send("POST", "read-model/versions/\(version)/promote", Empty?.none, asOperator: true)
    }
    func rollback() async throws -> Int {
        struct Active: Decodable { var activeVersion: Int }
        let active: Active = try await send("POST", "read-model/rollback", Empty?.none, asOperator: true)
        return active.activeVersion
    }

    private struct AddItem: Encodable {
        var sku: String
        var quantity: Int
    }
    private struct Empty: Encodable {}
    private struct Ignored: Decodable {}
    private struct Problem: Decodable {
        struct Detail: Decodable {
            var code: String
            var message: String
        }
        var error: Detail
    }

    private func get<T: Decodable>(_ path: String, asOperator: Bool = false) async throws -> T {
        try await perform(request(path, asOperator: asOperator))
    }

    private func send<T: Decodable>(_ method: String, _ path: String, _ body: (some Encodable)?, asOperator: Bool = false) async throws -> T {
        var request = request(path, asOperator: asOperator)
        request.httpMethod = method
        if let body {
            request.httpBody = try JSONEncoder().encode(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        return try await perform(request)
    }

    private func request(_ path: String, asOperator: Bool) -> URLRequest {
        var request = URLRequest(url: URL(string: path, relativeTo: baseURL)!)
        if asOperator, let operatorToken { request.setValue("Bearer \(operatorToken)", forHTTPHeaderField: "Authorization") }
        return request
    }

    private func perform<T: Decodable>(_ request: URLRequest) async throws -> T {
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw Failure(status: nil, code: "unreachable", message: "the service at \(baseURL.absoluteString) does not answer (\(error.localizedDescription))")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let problem = try? JSONDecoder().decode(Problem.self, from: data)
            throw Failure(
                status: status, code: problem?.error.code ?? "http\(status)", message: problem?.error.message ?? String(decoding: data, as: UTF8.self))
        }
        if T.self == Ignored.self { return Ignored() as! T }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw Failure(status: status, code: "unreadable", message: "an answer the console cannot read: \(error)")
        }
    }
}
