import ArgumentParser
import Foundation
import Kappa
import KappaFixtures

struct JSONBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json",
        abstract: "ns/event decoding cart event payloads: Foundation's JSONDecoder beside Kappa's PayloadDecoder.",
        discussion: """
            Decodes the cart fixture's payloads (ItemAdded / ItemRemoved / CheckedOut, \
            mixed as the fixture seeds them) with JSONDecoder configured as \
            EventRegistry configures it (the baseline, same run) and with \
            PayloadDecoder, and checks that both give the same values. No database. \
            Build in release mode:
              swift build -c release --product kappa-bench
              .build/release/kappa-bench json
            """
    )

    @Option(help: "Events decoded by each decoder.") var events = 1_000_000
    @Option(help: "Distinct payloads cycled through.") var distinct = 10_000
    @Option(help: "Rounds; the best round counts.") var rounds = 3

    /// A stored event: its type's tag and its payload.
    struct Payload {
        var type: UInt8 // 0 added, 1 removed, 2 checked out
        var data: Data
    }

    func validate() throws {
        guard events > 0, distinct > 0, rounds > 0 else { throw ValidationError("--events, --distinct and --rounds must be positive") }
    }

    func run() async throws {
        let mixed = Self.payloads(count: distinct)
        let added = mixed.filter { $0.type == 0 }
        emit("payloads: \(mixed.count) distinct (\(added.count) ItemAdded), e.g. \(String(decoding: added[0].data, as: UTF8.self))")
        let foundation = JSONDecoder()
        foundation.dateDecodingStrategy = .iso8601
        let payload = PayloadDecoder()

        emit("                      JSONDecoder   PayloadDecoder    speed-up")
        for (name, set) in [("mixed cart events", mixed), ("ItemAdded only", added)] {
            var best = (foundation: Double.infinity, payload: Double.infinity)
            for _ in 0..<rounds {
                let (baseline, baselineSum) = try measure(set) { try Self.decode($0, with: foundation) }
                let (ours, oursSum) = try measure(set) { try Self.decode($0, with: payload) }
                guard baselineSum == oursSum else {
                    throw ValidationError("the decoders disagree: checksum \(baselineSum) vs \(oursSum)")
                }
                best = (min(best.foundation, baseline), min(best.payload, ours))
            }
            emit(
                "\(name.padding(toLength: 20, withPad: " ", startingAt: 0))  \(format(best.foundation))   \(format(best.payload))   \(String(format: "%8.1f×", best.foundation / best.payload))"
            )
        }
    }

    /// ns per event decoding `events` payloads cycled from `set`, and a checksum of the values.
    func measure(_ set: [Payload], _ decode: (Payload) throws -> Int) throws -> (Double, Int) {
        var checksum = 0
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            var index = 0
            for _ in 0..<events {
                checksum &+= try decode(set[index])
                index += 1
                if index == set.count { index = 0 }
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return (seconds * 1e9 / Double(events), checksum)
    }

    func format(_ nanoseconds: Double) -> String {
        String(format: "%9.0f ns/event", nanoseconds)
    }

    /// Decodes a payload as its type with `decoder`; a checksum of it.
    static func decode(_ payload: Payload, with decoder: some PayloadDecoding) throws -> Int {
        switch payload.type {
        case 0:
            let event = try decoder.decode(CartEvents.ItemAdded.self, from: payload.data)
            return event.quantity &* event.unitPrice &+ event.sku.utf8.count &+ event.cartId.utf8.count
        case 1:
            let event = try decoder.decode(CartEvents.ItemRemoved.self, from: payload.data)
            return -(event.quantity &* event.unitPrice) &+ event.sku.utf8.count &+ event.cartId.utf8.count
        default:
            let event = try decoder.decode(CartEvents.CheckedOut.self, from: payload.data)
            return event.cartId.utf8.count &* 7
        }
    }

    /// The fixture's mix (``CartEvents/seed``): per cart, adds with every fifth a removal, then a checkout.
    static func payloads(count: Int, eventsPerCart: Int = 10) -> [Payload] {
        let encoder = JSONEncoder()
        var payloads: [Payload] = []
        var cart = 0
        while payloads.count < count {
            for n in 0..<eventsPerCart - 1 {
                let sku = "SKU-\(String(format: "%05d", (cart * 31 + n) % 100_000))"
                if n % 5 == 4 {
                    let event = CartEvents.ItemRemoved(cartId: "c\(cart)", sku: sku, quantity: 1, unitPrice: 100 + n - 1)
                    payloads.append(Payload(type: 1, data: (try? encoder.encode(event)) ?? Data()))
                } else {
                    let event = CartEvents.ItemAdded(cartId: "c\(cart)", sku: sku, quantity: 1 + n % 3, unitPrice: 1_000 + 37 * n)
                    payloads.append(Payload(type: 0, data: (try? encoder.encode(event)) ?? Data()))
                }
            }
            payloads.append(Payload(type: 2, data: (try? encoder.encode(CartEvents.CheckedOut(cartId: "c\(cart)"))) ?? Data()))
            cart += 1
        }
        return payloads
    }
}

/// What both decoders offer, so the benchmark calls each as EventRegistry would (specialized).
protocol PayloadDecoding {
    func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T
}

extension JSONDecoder: PayloadDecoding {}
extension PayloadDecoder: PayloadDecoding {}
