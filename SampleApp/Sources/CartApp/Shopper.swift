import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// One simulated customer of the load run: its requests, timed.
struct Shopper: Sendable {
    let http: HTTPClient
    let base: String

    struct Accepted: Decodable {
        var cartId: String
        var position: String?
    }
    struct Failed: Error, CustomStringConvertible {
        var status: UInt
        var description: String
    }

    /// Opens a cart, adds two items, checks out, reads the cart back once the read model has the checkout.
    func shop() async throws -> [(String, Duration)] {
        var timings: [(String, Duration)] = []
        let (opened, t1) = try await request("POST", "/carts", #"{"customer": "load"}"#)
        timings.append(("command", t1))
        let cart = try JSONDecoder().decode(Accepted.self, from: opened).cartId
        for sku in ["MUG", "TEA-GREEN"] {
            let (_, t) = try await request("POST", "/carts/\(cart)/items", #"{"sku": "\#(sku)", "quantity": 2}"#)
            timings.append(("command", t))
        }
        let (checkedOut, t4) = try await request("POST", "/carts/\(cart)/checkout", nil)
        timings.append(("command", t4))
        let position = try JSONDecoder().decode(Accepted.self, from: checkedOut).position ?? ""
        let (_, read) = try await request("GET", "/carts/\(cart)?after=\(position)", nil)
        timings.append(("read", read))
        return timings
    }

    func timed(_ method: String, _ path: String) async throws -> (String, Duration) {
        ("request", try await request(method, path, nil).1)
    }

    func request(_ method: String, _ path: String, _ body: String?) async throws -> (Data, Duration) {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            request.headers.add(name: "content-type", value: "application/json")
        }
        let started = ContinuousClock.now
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let elapsed = ContinuousClock.now - started
        guard (200..<300).contains(response.status.code) else {
            throw Failed(status: response.status.code, description: "\(method) \(path): \(response.status.code) \(String(buffer: bytes))")
        }
        return (Data(bytes.readableBytesView), elapsed)
    }
}

/// Samples the read model's lag (events behind the log) while the load runs.
final class LagSampler: Sendable {
    let http: HTTPClient
    let base: String
    private let worst = Mutex<Int>(0)

    init(http: HTTPClient, base: String) { (self.http, self.base) = (http, base) }

    var maximum: Int { worst.withLock { $0 } }

    struct Status: Decodable {
        struct Version: Decodable { var lagEvents: Int }
        var versions: [Version]
    }

    func run(for duration: Duration) async throws {
        let end = ContinuousClock.now + duration
        let shopper = Shopper(http: http, base: base)
        while ContinuousClock.now < end {
            let (data, _) = try await shopper.request("GET", "/read-model", nil)
            let lag = try JSONDecoder().decode(Status.self, from: data).versions.map(\.lagEvents).max() ?? 0
            worst.withLock { $0 = max($0, lag) }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}
