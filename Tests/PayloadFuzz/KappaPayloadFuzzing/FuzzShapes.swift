import Foundation

// The Decodable shapes the fuzzer writes documents for (``ShapeGenerator``): nested structs, arrays,
// optionals, dictionaries, recursion, every common scalar type and `Date`.

package struct Order: Codable, Equatable, Sendable {
    var id: Int64
    var customer: Customer
    var lines: [Line]
    var note: String?
    var placedAt: Date
    var paid: Bool
    var discount: Double?
    var priority: UInt8
    var attributes: [String: String]
    var history: [[Int]]?
}

package struct Customer: Codable, Equatable, Sendable {
    var name: String
    var email: String?
    var tags: [String]
    /// A key that is not ASCII: JSON may spell it decomposed (`cafe` + U+0301), which matches.
    // swift-format-ignore: IdentifiersMustBeASCII
    var café: Bool?
    var since: Date?
}

package struct Line: Codable, Equatable, Sendable {
    var sku: String
    var quantity: Int
    var unitPrice: Double
    var rank: Int16?
    var code: UInt64?
    var options: [String: Int]?
}

/// A tree of any depth.
package struct Node: Codable, Equatable, Sendable {
    var label: String
    var weight: Int32?
    var children: [Node]
}

package struct Readings: Codable, Equatable, Sendable {
    var sensor: String
    var values: [Double]
    var ratio: Float?
    var samples: [Int?]
    var raw: [UInt8]
    var stamps: [Date]
    var limits: [String: Double]?
    var flags: [Bool]
}

/// Any JSON value, found by trying each kind in turn (as a type that accepts several shapes
/// does): it takes every container and scalar path of a decoder, and their failures.
package indirect enum AnyJSON: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([AnyJSON])
    case object([String: AnyJSON])

    package init(from decoder: any Decoder) throws {
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let flag = try? single.decode(Bool.self) {
            self = .bool(flag)
        } else if let integer = try? single.decode(Int64.self) {
            self = .integer(integer)
        } else if let double = try? single.decode(Double.self) {
            self = .double(double)
        } else if let string = try? single.decode(String.self) {
            self = .string(string)
        } else if let elements = try? single.decode([AnyJSON].self) {
            self = .array(elements)
        } else {
            self = .object(try single.decode([String: AnyJSON].self))
        }
    }
}

/// Keeps its decoder after `decode` returned, to read the payload again after other decodes (whose
/// cached working memory must not be this decoder's).
package final class Retained: Decodable, @unchecked Sendable {
    package let decoder: any Decoder

    package init(from decoder: any Decoder) throws {
        self.decoder = decoder
    }
}
