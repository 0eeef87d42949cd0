import Foundation
import KappaPayloadDecoding
import KappaPayloadFuzzing

// The types only the tests decode (the fuzzing's are in KappaPayloadFuzzing).

struct Box<T: Codable & Equatable>: Codable, Equatable { var value: T }
struct OptionalBox<T: Codable & Equatable>: Codable, Equatable { var value: T? }
struct Kelvin: Codable, Equatable { var K: Int }
struct Accented: Codable, Equatable {
    var e: String
    enum CodingKeys: String, CodingKey { case e = "é" }
}

/// Keeps its decoder, a container and a super decoder, to use them after `decode` returned.
final class Keeper: Decodable, @unchecked Sendable {
    enum Key: String, CodingKey { case a, n, x }
    let decoder: any Decoder
    let container: KeyedDecodingContainer<Key>
    let superDecoder: any Decoder

    init(from decoder: any Decoder) throws {
        self.decoder = decoder
        container = try decoder.container(keyedBy: Key.self)
        superDecoder = try container.superDecoder(forKey: .n)
    }
}

/// Decodes a JSON payload held in a string with PayloadDecoder, inside its own decoding.
struct Nesting: Decodable, Equatable {
    var inner: Small
    var a: Int

    enum CodingKeys: String, CodingKey { case inner, a }

    init(inner: Small, a: Int) {
        self.inner = inner
        self.a = a
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        inner = try PayloadDecoder().decode(Small.self, from: Data(container.decode(String.self, forKey: .inner).utf8))
        a = try container.decode(Int.self, forKey: .a)
    }
}

/// Nested arrays to any depth.
indirect enum Tree: Decodable, Equatable {
    case leaf(Int)
    case node([Tree])

    init(from decoder: any Decoder) throws {
        if var container = try? decoder.unkeyedContainer() {
            var children: [Tree] = []
            while !container.isAtEnd { children.append(try container.decode(Tree.self)) }
            self = .node(children)
        } else {
            self = .leaf(try decoder.singleValueContainer().decode(Int.self))
        }
    }
}
