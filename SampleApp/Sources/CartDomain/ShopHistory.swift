import Foundation
import Kappa

/// A believable shop history for demos and benchmarks, the same for the same seed: carts opened over
/// `days`, filled with 1 to 6 products, some quantities changed or lines removed, then about 65%
/// checked out, 20% abandoned and 15% left open. Every event comes from the cart's own rules
/// (``Cart``), so the history is one the service could have written. Ids and times come from the
/// seed and `start`, never from the clock.
public struct ShopHistory: Sendable {
    public let seed: UInt64
    public let start: Date
    public let days: Int
    public let catalogue: Catalogue

    public init(seed: UInt64 = 42, start: Date, days: Int = 30, catalogue: Catalogue = .demo) {
        (self.seed, self.start, self.days, self.catalogue) = (seed, start, max(1, days), catalogue)
    }

    static let customers = [
        "ada", "alan", "barbara", "edsger", "grace", "john", "ken", "leslie", "margaret", "niklaus",
        "radia", "tony", "barbara", "donald", "frances", "katherine", "linus", "shafi", "whitfield", "yukihiro",
    ]

    /// Cart number `index`: its id, and its events in order with their times.
    public func cart(_ index: Int) -> (id: String, events: [(event: CartEvent, at: Date)]) {
        var random = SplitMix64(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        let id = random.uuid().uuidString.lowercased()
        let decider = Cart.decider(id: id, catalogue: catalogue)
        var state = decider.initialState
        var at = start.addingTimeInterval(Double(random.next(below: UInt64(days) * 86_400)))
        var events: [(CartEvent, Date)] = []
        func run(_ command: CartCommand) {
            guard let decided = try? decider.decide(command, state) else { return }
            for event in decided {
                state = decider.evolve(state, event)
                events.append((event, at))
            }
            at.addTimeInterval(Double(5 + random.next(below: 600)))
        }
        let customer = Self.customers[Int(random.next(below: UInt64(Self.customers.count)))]
        run(.open(customer: "\(customer)-\(index % 1_000)", at: at))
        let products = catalogue.products
        var chosen: [String] = []
        for _ in 0..<(1 + Int(random.next(below: 3)) + Int(random.next(below: 4))) {
            let sku = products[Int(random.next(below: UInt64(products.count)))].sku
            run(.addItem(sku: sku, quantity: 1 + Int(random.next(below: random.next(below: 4) == 0 ? 6 : 2)), at: at))
            chosen.append(sku)
        }
        if random.next(below: 10) < 3, let sku = chosen.first { run(.changeQuantity(sku: sku, quantity: 1 + Int(random.next(below: 5)))) }
        if random.next(below: 100) < 15, chosen.count > 1, let sku = chosen.last { run(.removeItem(sku: sku)) }
        switch random.next(below: 100) {
        case 0..<65: run(.checkOut(at: at))
        case 65..<85: run(.abandon(at: at))
        default: break
        }
        return (id, events)
    }

    /// The id of event `number` of cart `index`: the same on every run, so seeding twice appends nothing.
    public func eventID(cart index: Int, number: Int) -> UUID {
        var random = SplitMix64(seed: (seed ^ 0x5EED) &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(number) &* 0xD1B5_4A32_D192_ED03)
        return random.uuid()
    }
}

/// Kappa's seedable generator: the same seed, the same history, on every machine.
extension SplitMix64 {
    /// Uniform enough in `0..<bound` for a demo (bound > 0).
    mutating func next(below bound: UInt64) -> UInt64 { bound == 0 ? 0 : next() % bound }

    mutating func uuid() -> UUID {
        let (a, b) = (next(), next())
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: a >> (8 * i))
            bytes[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * i))
        }
        bytes[6] = bytes[6] & 0x0F | 0x40 // version 4
        bytes[8] = bytes[8] & 0x3F | 0x80 // RFC 4122 variant
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }
}
