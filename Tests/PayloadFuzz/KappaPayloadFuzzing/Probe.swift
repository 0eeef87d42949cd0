import Foundation

/// Records what every container operation returns or throws, to compare the decoders' APIs:
/// allKeys, contains, decodeNil, decodeIfPresent (missing vs null), nested containers, super
/// decoders, coding paths, an unkeyed container's index and end after each step.
package struct Probe: Decodable, Equatable {
    package var trace: [String] = []

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ stringValue: String) { self.stringValue = stringValue }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    package init(from decoder: any Decoder) throws {
        let depth = decoder.codingPath.count
        trace.append("path \(decoder.codingPath.map(\.stringValue))")
        if let keyed = attempt("keyed", { try decoder.container(keyedBy: AnyKey.self) }) {
            probe(keyed, depth: depth)
        } else if var unkeyed = attempt("unkeyed", { try decoder.unkeyedContainer() }) {
            probe(&unkeyed, depth: depth)
        } else if let single = attempt("single", { try decoder.singleValueContainer() }) {
            note("nil") { single.decodeNil() }
            note("bool") { try single.decode(Bool.self) }
            note("int") { try single.decode(Int.self) }
            note("int8") { try single.decode(Int8.self) }
            note("double") { try single.decode(Double.self) }
            note("string") { try single.decode(String.self) }
            note("date") { try single.decode(Date.self) }
            note("[int]") { try single.decode([Int].self) }
        }
    }

    /// Keys in the order of their scalars. (JSONDecoder lists keys in a random order, and String's
    /// `<` is no order for all strings: neither of "\u{E9}\u{0}" and "e\u{301}" is less than the other.)
    static func ordered(_ keys: [String]) -> [String] {
        keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    }

    mutating func attempt<T>(_ label: String, _ body: () throws -> T) -> T? {
        do { return try body() } catch {
            trace.append("\(label) ! \(Differential.signature(error))")
            return nil
        }
    }

    mutating func note(_ label: String, _ body: () throws -> Any) {
        do { trace.append("\(label) = \(try body())") } catch { trace.append("\(label) ! \(Differential.signature(error))") }
    }

    mutating func probe(_ container: KeyedDecodingContainer<AnyKey>, depth: Int) {
        trace.append("codingPath \(container.codingPath.map(\.stringValue)) allKeys \(Self.ordered(container.allKeys.map(\.stringValue)))")
        for name in ["a", "b", "c", "n", "x", "super", "missing", "A"] {
            let key = AnyKey(name)
            note("\(name) contains") { container.contains(key) }
            note("\(name) nil") { try container.decodeNil(forKey: key) }
            note("\(name) bool") { try container.decode(Bool.self, forKey: key) }
            note("\(name) bool?") { try container.decodeIfPresent(Bool.self, forKey: key) as Any }
            note("\(name) int") { try container.decode(Int.self, forKey: key) }
            note("\(name) uint8?") { try container.decodeIfPresent(UInt8.self, forKey: key) as Any }
            note("\(name) int128") { try container.decode(Int128.self, forKey: key) }
            note("\(name) double") { try container.decode(Double.self, forKey: key) }
            note("\(name) float?") { try container.decodeIfPresent(Float.self, forKey: key) as Any }
            note("\(name) string") { try container.decode(String.self, forKey: key) }
            note("\(name) string?") { try container.decodeIfPresent(String.self, forKey: key) as Any }
            note("\(name) [int]") { try container.decode([Int].self, forKey: key) }
            note("\(name) [int?]?") { try container.decodeIfPresent([Int?].self, forKey: key) as Any }
            // Which of several bad entries a dictionary reports follows JSONDecoder's random key order.
            note("\(name) [string: int]") {
                (try? container.decode([String: Int].self, forKey: key)).map { entries in
                    Self.ordered(Array(entries.keys)).map { "\($0): \(entries[$0]!)" }.description
                } ?? "failed"
            }
            note("\(name) date?") { try container.decodeIfPresent(Date.self, forKey: key) as Any }
            note("\(name) nested keys") { Self.ordered(try container.nestedContainer(keyedBy: AnyKey.self, forKey: key).allKeys.map(\.stringValue)) }
            note("\(name) nested unkeyed") {
                let nested = try container.nestedUnkeyedContainer(forKey: key)
                return "\(nested.count ?? -1) \(nested.isAtEnd) \(nested.codingPath.map(\.stringValue))"
            }
            if depth < 2, name == "n" || name == "x" {
                note("\(name) probe") { try container.decode(Probe.self, forKey: key).trace }
                note("\(name) super") { try Probe(from: container.superDecoder(forKey: key)).trace }
            }
        }
        if depth < 2 { note("super()") { try Probe(from: container.superDecoder()).trace } }
    }

    mutating func probe(_ container: inout any UnkeyedDecodingContainer, depth: Int) {
        trace.append("count \(container.count ?? -1) atEnd \(container.isAtEnd) codingPath \(container.codingPath.map(\.stringValue))")
        for step in 0..<2 * ((container.count ?? 0) + 2) {
            switch step % 7 {
            case 0: note("nil") { try container.decodeNil() }
            case 1: note("int") { try container.decode(Int.self) }
            case 2: note("string?") { try container.decodeIfPresent(String.self) as Any }
            case 3 where depth < 2: note("probe") { try container.decode(Probe.self).trace }
            case 3: note("double") { try container.decode(Double.self) }
            case 4: note("nested unkeyed") { try container.nestedUnkeyedContainer().count ?? -1 }
            case 5: note("bool?") { try container.decodeIfPresent(Bool.self) as Any }
            default: note("nested keyed") { Self.ordered(try container.nestedContainer(keyedBy: AnyKey.self).allKeys.map(\.stringValue)) }
            }
            trace.append("at \(container.currentIndex) \(container.isAtEnd)")
        }
        if depth < 2 { note("super") { try Probe(from: container.superDecoder()).trace } }
    }
}
