import Foundation
import Hummingbird
import HummingbirdTesting
import KappaPostgres
import KappaTesting
import Logging
import Testing

@testable import CartService

/// A log whose URL names several hosts (`--database-url postgres://…@db1,db2/…`) is reached through a
/// PrimaryRouter, at the host that accepts writes: here the first host accepts no connection at all.
@Suite("Sample app: a log of several hosts")
struct CartRoutingTests {
    struct Accepted: Decodable { var cartId: String }

    @Test func theServiceReachesTheLogThroughItsRouter() async throws {
        try await TestDatabase.withSchema(prefix: "cart_routed") { _, schema in
            var configuration = serviceConfiguration(schema: schema)
            let server = configuration.database
            // The configured host is the dead one: without the router nothing would connect.
            configuration.database = .init(
                host: "127.0.0.1", port: 1, username: server.username, password: server.password, database: server.database, tls: .disable)
            configuration.databaseRouting = PrimaryRouter.Routing(hosts: [
                .init(host: "127.0.0.1", port: 1), .init(host: server.host ?? "localhost", port: server.port ?? 5432),
            ])
            let app = try await buildApplication(configuration: configuration, logger: Logger(label: "cart.test"))
            try await app.test(.router) { router in
                let opened = try await router.executeRequest(
                    uri: "/carts", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: #"{"customer": "ada"}"#))
                #expect(opened.status == .created, "\(String(buffer: opened.body))")
                let cart = try JSONDecoder().decode(Accepted.self, from: Data(opened.body.readableBytesView))
                let read = try await router.executeRequest(uri: "/carts/\(cart.cartId)", method: .get, headers: [:], body: nil)
                #expect(read.status == .ok || read.status == .notFound, "\(String(buffer: read.body))")
            }
        }
    }
}
