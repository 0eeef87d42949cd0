import Foundation

// The types RandomJSON's documents are made for (``RandomJSON/document(_:)``, ``RandomJSON/cartLike(_:)``).

/// A cart event's payload.
package struct ItemAdded: Codable, Equatable, Sendable {
    package var cartId: String
    package var sku: String
    package var quantity: Int
    package var unitPrice: Int

    package init(cartId: String, sku: String, quantity: Int, unitPrice: Int) {
        (self.cartId, self.sku, self.quantity, self.unitPrice) = (cartId, sku, quantity, unitPrice)
    }
}

package struct Small: Codable, Equatable, Sendable {
    package var a: Int
    package var b: String?

    package init(a: Int, b: String?) {
        (self.a, self.b) = (a, b)
    }
}

/// Every kind of value, and the types JSONDecoder decodes specially (Date, Data, URL, Decimal).
package struct Everything: Codable, Equatable, Sendable {
    enum Kind: String, Codable { case alpha, beta }
    enum Rank: Int, Codable {
        case first = 1
        case second = 2
    }
    struct Nested: Codable, Equatable {
        var level: Int
        var label: String
    }
    var name: String
    var count: Int
    var flag: Bool
    var ratio: Double
    var small: Int8
    var big: UInt64
    var maybe: String?
    var tags: [String]
    var nested: Nested
    var kind: Kind
    var rank: Rank
    var scores: [String: Int]
    var date: Date?
    var data: Data?
    var url: URL?
    var decimal: Decimal?
    var matrix: [[Double]]
    var optionals: [Int?]
}
