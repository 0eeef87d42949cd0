import CartService
import Foundation
import Hummingbird
import HummingbirdTesting
import KappaTesting
import Logging
import PostgresNIO
import Testing

/// The service without projections, and `cart-app worker` — a real process — running them.
@Suite("Sample app: the projections in a worker process", .serialized)
struct CartWorkerTests {
    struct Accepted: Decodable {
        var cartId: String
        var position: String?
    }
    struct CartView: Decodable {
        var items: Int
        var totalCents: Int
    }

    @Test func theServiceReadsWhatAWorkerProcessProjects() async throws {
        try await TestDatabase.withSchema(prefix: "cart_wrk") { client, schema in
            var configuration = serviceConfiguration(schema: schema)
            configuration.runProjections = false
            let worker = Process()
            worker.executableURL = URL(fileURLWithPath: try cartApp())
            worker.arguments = ["worker"]
            worker.environment = ProcessInfo.processInfo.environment.merging([
                "KAPPA_LOG_SCHEMA": schema, "KAPPA_RUNTIME_SCHEMA": "\(schema)_rt", "CART_READ_MODEL": configuration.readModel, "LOG_LEVEL": "error",
            ]) { $1 }
            try worker.run()
            defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }

            let app = try await buildApplication(configuration: configuration, logger: Logger(label: "cart.test"))
            let asOperator = operatorHeaders(configuration)
            try await app.test(.router) { router in
                let http = router.checked
                let opened = try await http.execute(uri: "/carts", method: .post, body: ByteBuffer(string: #"{"customer": "ada"}"#))
                let cart = try JSONDecoder().decode(Accepted.self, from: Data(opened.body.readableBytesView))
                let added = try await http.execute(
                    uri: "/carts/\(cart.cartId)/items", method: .post, body: ByteBuffer(string: #"{"sku": "KETTLE", "quantity": 1}"#))
                let position = try #require(try JSONDecoder().decode(Accepted.self, from: Data(added.body.readableBytesView)).position)
                // Read your own write: the worker's commits, seen through the checkpoint table.
                let read = try await http.execute(uri: "/carts/\(cart.cartId)?after=\(position)", method: .get)
                #expect(read.status == .ok, "\(String(buffer: read.body))")
                let view = try JSONDecoder().decode(CartView.self, from: Data(read.body.readableBytesView))
                #expect(view.items == 1 && view.totalCents == 5_900)
                // Versions are started where the projections run.
                let build = try await http.execute(uri: "/read-model/versions/2/build", method: .post, headers: asOperator)
                #expect(build.status == .conflict && String(buffer: build.body).contains("projectionsRunElsewhere"))
            }
            // SIGTERM: the worker finishes its batch, releases its lease and exits 0.
            kill(worker.processIdentifier, SIGTERM)
            try await eventually("the worker exits") { !worker.isRunning }
            #expect(worker.terminationStatus == 0)
            var owners: [String?] = []
            for try await owner in try await client.query(PostgresQuery(unsafeSQL: "SELECT lease_owner FROM \(schema)_rt.projections")).decode(String?.self) {
                owners.append(owner)
            }
            #expect(owners == [nil], "leases released: \(owners)")
            for name in [configuration.readModel, "\(configuration.readModel)_v1", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE"))
            }
        }
    }
}
