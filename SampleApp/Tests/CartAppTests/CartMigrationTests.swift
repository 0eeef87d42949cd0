import CartService
import Foundation
import Hummingbird
import HummingbirdTesting
import KappaTesting
import Logging
import PostgresNIO
import Synchronization
import Testing

/// The sample's whole point, through its HTTP API: v1 serves, v2 is started in the running service,
/// rebuilt from the log, compared, promoted, rolled back and promoted again — while commands and
/// queries keep flowing, every one of them answered 2xx.
@Suite("Sample app: migrating the read model over HTTP", .serialized)
struct CartMigrationTests {
    struct Accepted: Decodable {
        var cartId: String
        var position: String?
    }
    struct CartView: Decodable {
        var cartId: String
        var status: String
        var secondsToCheckout: Double?
    }
    struct ReadModel: Decodable {
        struct Version: Decodable {
            var version: Int
            var lifecycle: String
            var state: String
            var lagEvents: Int64
        }
        var activeVersion: Int?
        var availableVersions: [Int]
        var versions: [Version]
    }
    struct Comparison: Decodable {
        var samePosition: Bool
        var differingRows: Int
        var tablesOnlyInNew: [String]
    }
    struct Problem: Decodable {
        struct Detail: Decodable { var code: String }
        var error: Detail
    }

    /// Status codes outside 2xx seen by the background traffic, and how many requests it made.
    final class Traffic: Sendable {
        private let state = Mutex((requests: 0, failures: [String]()))
        var requests: Int { state.withLock { $0.requests } }
        var failures: [String] { state.withLock { $0.failures } }

        func record(_ statuses: [HTTPResponse.Status], _ who: String) {
            state.withLock { t in
                t.requests += statuses.count
                for status in statuses where !(200..<300).contains(Int(status.code)) && t.failures.count < 20 { t.failures.append("\(who): \(status)") }
            }
        }
    }

    @Test func migrateV1ToV2WhileRequestsFlowThenRollBackAndPromoteAgain() async throws {
        try await TestDatabase.withSchema(prefix: "cart_mig") { client, schema in
            let configuration = serviceConfiguration(schema: schema)
            let app = try await buildApplication(configuration: configuration, logger: Logger(label: "cart.test"))
            try await app.test(.router) { router in
                let http = router.checked
                // A history: 30 carts, a third checked out, a third abandoned.
                var checkedOut: String?, checkoutPosition: String?
                for index in 0..<30 {
                    let cart = try decode(
                        Accepted.self, try await http.execute(uri: "/carts", method: .post, body: ByteBuffer(string: #"{"customer": "c\#(index)"}"#)))
                    _ = try await http.execute(uri: "/carts/\(cart.cartId)/items", method: .post, body: ByteBuffer(string: #"{"sku": "MUG", "quantity": 2}"#))
                    if index % 3 == 1 {
                        let done = try decode(Accepted.self, try await http.execute(uri: "/carts/\(cart.cartId)/checkout", method: .post))
                        (checkedOut, checkoutPosition) = (cart.cartId, done.position)
                    }
                    if index % 3 == 2 { _ = try await http.execute(uri: "/carts/\(cart.cartId)/abandon", method: .post) }
                }
                let shopper = try #require(checkedOut)
                try await eventually("v1 serves") { try await status(http).activeVersion == 1 }
                // v1 has the whole history: the checkout is read back (waiting for its position).
                #expect(try await cartView(http, shopper, after: checkoutPosition).status == "checked_out")

                let traffic = Traffic(), stop = Stop()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // A shopper and a reader keep going through the whole migration.
                    group.addTask {
                        while !stop.isSet {
                            let opened = try await http.execute(uri: "/carts", method: .post, body: ByteBuffer(string: #"{"customer": "live"}"#))
                            guard let cart = try? JSONDecoder().decode(Accepted.self, from: Data(opened.body.readableBytesView)) else {
                                traffic.record([opened.status], "shopper: \(String(buffer: opened.body))")
                                continue
                            }
                            let added = try await http.execute(
                                uri: "/carts/\(cart.cartId)/items", method: .post, body: ByteBuffer(string: #"{"sku": "TEA-GREEN", "quantity": 1}"#))
                            let position = (try? JSONDecoder().decode(Accepted.self, from: Data(added.body.readableBytesView)))?.position ?? ""
                            let read = try await http.execute(uri: "/carts/\(cart.cartId)?after=\(position)", method: .get)
                            traffic.record([opened.status, added.status, read.status], "shopper")
                        }
                    }
                    group.addTask {
                        while !stop.isSet {
                            let list = try await http.execute(uri: "/carts?limit=20", method: .get)
                            let one = try await http.execute(uri: "/carts/\(shopper)", method: .get)
                            traffic.record([list.status, one.status], "reader")
                        }
                    }
                    let outcome: Result<Void, any Error>
                    do { outcome = .success(try await migrate(http, checkedOut: shopper, operatorHeaders(configuration))) } catch { outcome = .failure(error) }
                    stop.set()
                    try await group.waitForAll()
                    try outcome.get()
                }
                #expect(traffic.failures.isEmpty, "\(traffic.failures.prefix(5))")
                #expect(traffic.requests > 20)
            }
            for name in [configuration.readModel, "\(configuration.readModel)_v1", "\(configuration.readModel)_v2", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE"))
            }
        }
    }

    /// A service started again after a migration, with its default configuration (v1), runs v2 too —
    /// the version the database records as active — so v2 follows the log and a read of one's own
    /// write is answered from it (before, v2 was served frozen: 404 for a cart opened after the restart).
    @Test func aRestartAfterAMigrationKeepsTheActiveVersionFollowingTheLog() async throws {
        try await TestDatabase.withSchema(prefix: "cart_mig") { client, schema in
            let configuration = serviceConfiguration(schema: schema)
            let first = try await buildApplication(configuration: configuration, logger: Logger(label: "cart.test"))
            let asOperator = operatorHeaders(configuration)
            try await first.test(.router) { router in
                let http = router.checked
                _ = try await http.execute(uri: "/carts", method: .post, body: ByteBuffer(string: #"{"customer": "before"}"#))
                #expect(try await http.execute(uri: "/read-model/versions/2/build", method: .post, headers: asOperator).status == .accepted)
                try await eventually("v2 has caught up", timeout: .seconds(60)) {
                    try await status(http).versions.first { $0.version == 2 }?.lifecycle == "caught_up"
                }
                let promoted = try await http.execute(uri: "/read-model/versions/2/promote", method: .post, headers: asOperator)
                #expect(promoted.status == .ok, "\(String(buffer: promoted.body))")
            }
            let again = try await buildApplication(configuration: configuration, logger: Logger(label: "cart.test"))
            try await again.test(.router) { router in
                let http = router.checked
                let cart = try decode(Accepted.self, try await http.execute(uri: "/carts", method: .post, body: ByteBuffer(string: #"{"customer": "after"}"#)))
                let read = try await http.execute(uri: "/carts/\(cart.cartId)?after=\(cart.position ?? "")", method: .get)
                #expect(read.status == .ok, "\(String(buffer: read.body))")
                let v2 = try #require(try await status(http).versions.first { $0.version == 2 })
                #expect(v2.lifecycle == "active")
                #expect(v2.state == "live")
            }
            for name in [configuration.readModel, "\(configuration.readModel)_v1", "\(configuration.readModel)_v2", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE"))
            }
        }
    }

    /// Start v2, wait for it, compare, promote, roll back, promote again; refusals on the way.
    func migrate(_ http: some TestClientProtocol, checkedOut cart: String, _ operatorHeaders: HTTPFields) async throws {
        #expect(try await status(http).availableVersions == [1, 2])
        #expect(try await cartView(http, cart).secondsToCheckout == nil, "v1 has no checkout time")
        try await expectProblem(
            try await http.execute(uri: "/read-model/versions/2/promote", method: .post, headers: operatorHeaders), .notFound, "unknownVersion")
        #expect(try await http.execute(uri: "/read-model/versions/2/build", method: .post, headers: operatorHeaders).status == .accepted)
        try await expectProblem(
            try await http.execute(uri: "/read-model/versions/2/build", method: .post, headers: operatorHeaders), .conflict, "alreadyRunning")
        try await expectProblem(
            try await http.execute(uri: "/read-model/versions/9/build", method: .post, headers: operatorHeaders), .notFound, "unknownVersion")
        try await eventually("v2 has caught up", timeout: .seconds(60)) {
            try await status(http).versions.first { $0.version == 2 }?.lifecycle == "caught_up"
        }
        let compared = try await http.execute(uri: "/read-model/compare?old=1&new=2", method: .get, headers: operatorHeaders)
        #expect(compared.status == .ok)
        let comparison = try decode(Comparison.self, compared)
        #expect(comparison.tablesOnlyInNew.sorted() == ["cart_lines", "product_sales"])
        try await expectProblem(try await http.execute(uri: "/read-model/compare?old=1", method: .get, headers: operatorHeaders), .badRequest, "invalidQuery")

        #expect(try await http.execute(uri: "/read-model/versions/2/promote", method: .post, headers: operatorHeaders).status == .ok)
        #expect(try await status(http).activeVersion == 2)
        #expect(try await cartView(http, cart).secondsToCheckout != nil, "v2 answers with data only the log had")
        try await expectProblem(
            try await http.execute(uri: "/read-model/versions/1/promote", method: .post, headers: operatorHeaders), .conflict, "versionBelowActive")

        #expect(try await http.execute(uri: "/read-model/rollback", method: .post, headers: operatorHeaders).status == .ok)
        #expect(try await status(http).activeVersion == 1)
        #expect(try await cartView(http, cart).secondsToCheckout == nil)
        try await expectProblem(try await http.execute(uri: "/read-model/rollback", method: .post, headers: operatorHeaders), .conflict, "noPreviousVersion")
        // v2, retired, kept following the log: promoted again, it is current.
        #expect(try await http.execute(uri: "/read-model/versions/2/promote", method: .post, headers: operatorHeaders).status == .ok)
        let events = try await http.execute(uri: "/carts/\(cart)/events", method: .get)
        #expect(events.status == .ok && String(buffer: events.body).contains("CartCheckedOut"))
    }

    func status(_ http: some TestClientProtocol) async throws -> ReadModel {
        try decode(ReadModel.self, try await http.execute(uri: "/read-model", method: .get))
    }

    func cartView(_ http: some TestClientProtocol, _ id: String, after position: String? = nil) async throws -> CartView {
        try decode(CartView.self, try await http.execute(uri: "/carts/\(id)" + (position.map { "?after=\($0)" } ?? ""), method: .get))
    }

    /// The body as `T`; otherwise an error with the status and body.
    func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body.readableBytesView))
        } catch {
            throw UnexpectedResponse(description: "\(response.status) \(String(buffer: response.body)) is not a \(T.self): \(error)")
        }
    }

    struct UnexpectedResponse: Error, CustomStringConvertible { var description: String }

    func expectProblem(
        _ response: TestResponse, _ status: HTTPResponse.Status, _ code: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        #expect(response.status == status, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
        #expect((try? decode(Problem.self, response))?.error.code == code, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
    }
}

/// A flag the background traffic checks.
final class Stop: Sendable {
    private let flag = Atomic(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
