import Foundation

/// Random JSON text: mostly valid, with the odd number, string, key, comma or byte that is not.
package enum RandomJSON {
    static let keys = [
        "a", "b", "c", "n", "x", "super", "cartId", "sku", "quantity", "unitPrice", "name", "count", "flag", "ratio", "small",
        "big", "maybe", "tags", "nested", "level", "label", "kind", "rank", "scores", "date", "data", "url", "decimal", "matrix",
        "optionals", "\\u0061", "na\\u006de", "\\u212A", "é",
    ]
    static let numbers = [
        "0", "-0", "1", "-1", "2", "42", "127", "128", "-128", "-129", "255", "256", "1299", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "18446744073709551615", "18446744073709551616", "1.0", "1.5", "-0.0",
        "1e2", "1E+2", "2.5e-3", "1e400", "1e-400", "0.1", "3.14159", "01", "1.", "-", "--1", "1e", "9007199254740993.5",
    ]
    static let pieces = [
        "a", "b", "SKU-", "c1", " ", "\\n", "\\\"", "\\\\", "\\/", "\\t", "\\u0041", "\\u00e9", "\\uD83D\\uDE00", "\\uD800",
        "\\uDC00", "\\u12G4", "\\q", "é", "😀", "中", "\u{1}", "\u{7F}", "\\u0000", "e\u{301}",
    ]
    static let dates = [
        "2024-01-02T03:04:05Z", "1999-12-31T23:59:59Z", "2024-02-30T00:00:00Z", "2024-01-02T03:04:05.250Z",
        "2024-01-02T03:04:05+02:00", "2024-01-02", "yesterday", "2024-01-02T03:04:60Z", "1500-06-01T00:00:00Z",
    ]
    static let base64 = ["", "AQID", "AQI=", "AQ==", "QUJD", "AQI", "A===", "****", "////", "+/8="]

    package static func space(_ random: inout SplitMix64) -> String {
        random.chance(0.8) ? "" : random.pick([" ", "\n", "\t", "\r\n ", "  "])
    }

    package static func number(_ random: inout SplitMix64) -> String {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: random.pick(numbers)
        case 1: "\(Int.random(in: -1_000_000...1_000_000, using: &random))"
        case 2: "\(Double.random(in: -1e6...1e6, using: &random))"
        default: "\(Int.random(in: 1...99, using: &random))e\(Int.random(in: -30...30, using: &random))"
        }
    }

    package static func string(_ random: inout SplitMix64) -> String {
        switch Int.random(in: 0..<10, using: &random) {
        case 0: return "\"\(random.pick(dates))\""
        case 1: return "\"\(random.pick(base64))\""
        case 2...4: return "\"\(random.pick(["x", "SKU-00042", "c123", "alpha", "beta", "https://example.com", ""]))\""
        default: return "\"" + (0..<Int.random(in: 0...6, using: &random)).map { _ in random.pick(pieces) }.joined() + "\""
        }
    }

    package static func value(_ random: inout SplitMix64, depth: Int) -> String {
        let kind = Int.random(in: 0..<(depth >= 3 ? 6 : 9), using: &random)
        switch kind {
        case 0: return random.pick(["null", "true", "false"])
        case 1, 2: return number(&random)
        case 3...5: return string(&random)
        case 6: return array(&random, depth: depth)
        default: return object(&random, depth: depth)
        }
    }

    package static func array(_ random: inout SplitMix64, depth: Int) -> String {
        let elements = (0..<Int.random(in: 0...4, using: &random)).map { _ in space(&random) + value(&random, depth: depth + 1) + space(&random) }
        return "[" + elements.joined(separator: ",") + (random.chance(0.05) && !elements.isEmpty ? "," : "") + "]"
    }

    package static func object(_ random: inout SplitMix64, depth: Int, members: [(String, String)] = []) -> String {
        var members = members
        for _ in 0..<Int.random(in: 0...5, using: &random) {
            members.append((random.pick(keys), value(&random, depth: depth + 1)))
        }
        if random.chance(0.1), let first = members.first { members.append(first) } // a repeated key
        members.shuffle(using: &random)
        let text = members.map { space(&random) + "\"\($0.0)\"" + space(&random) + ":" + space(&random) + $0.1 + space(&random) }
        return "{" + text.joined(separator: ",") + (random.chance(0.05) && !members.isEmpty ? "," : "") + "}"
    }

    /// An object with Everything's fields, mostly of the right types.
    package static func document(_ random: inout SplitMix64) -> String {
        var members: [(String, String)] = []
        for key in [
            "name", "count", "flag", "ratio", "small", "big", "maybe", "tags", "nested", "kind", "rank", "scores", "date", "data",
            "url", "decimal", "matrix", "optionals",
        ] where random.chance(0.93) {
            guard random.chance(0.9) else {
                members.append((key, value(&random, depth: 2)))
                continue
            }
            let text: String
            switch key {
            case "name", "url": text = string(&random)
            case "count", "ratio", "small", "big", "decimal": text = number(&random)
            case "flag": text = random.pick(["true", "false"])
            case "maybe": text = random.pick(["null", "\"m\""])
            case "tags": text = "[" + (0..<Int.random(in: 0...3, using: &random)).map { _ in string(&random) }.joined(separator: ",") + "]"
            case "nested": text = "{\"level\":\(number(&random)),\"label\":\(string(&random))}"
            case "kind": text = random.pick(["\"alpha\"", "\"beta\"", "\"gamma\""])
            case "rank": text = random.pick(["1", "2", "3", "1.0"])
            case "scores": text = object(&random, depth: 2)
            case "date": text = "\"\(random.pick(dates))\""
            case "data": text = "\"\(random.pick(base64))\""
            case "matrix": text = "[[\(number(&random))],[]]"
            default: text = "[\(number(&random)),null]"
            }
            members.append((key, text))
        }
        return object(&random, depth: 1, members: members)
    }

    /// A cart-shaped object: the four fields, mostly right, sometimes extra, missing, null or wrong.
    package static func cartLike(_ random: inout SplitMix64) -> Data {
        var members: [(String, String)] = []
        if random.chance(0.95) {
            members.append(("cartId", random.chance(0.9) ? "\"c\(Int.random(in: 0...99_999, using: &random))\"" : value(&random, depth: 2)))
        }
        if random.chance(0.95) { members.append(("sku", random.chance(0.9) ? string(&random) : value(&random, depth: 2))) }
        if random.chance(0.95) { members.append(("quantity", random.chance(0.9) ? number(&random) : value(&random, depth: 2))) }
        if random.chance(0.95) { members.append(("unitPrice", random.chance(0.9) ? number(&random) : value(&random, depth: 2))) }
        if random.chance(0.5) { members.append(("a", number(&random))) }
        return mutated(object(&random, depth: 1, members: members), &random)
    }

    /// Now and then one byte deleted, inserted or replaced (maybe breaking UTF-8), or the text cut short.
    package static func mutated(_ text: String, _ random: inout SplitMix64) -> Data {
        var bytes = Array(text.utf8)
        guard random.chance(0.25), !bytes.isEmpty else { return Data(bytes) }
        let at = Int.random(in: 0..<bytes.count, using: &random)
        let byte = random.pick(Array("\",]}\\:0 x-.e\u{1}".utf8) + [0xC3, 0xFF])
        switch Int.random(in: 0..<4, using: &random) {
        case 0: bytes.remove(at: at)
        case 1: bytes.insert(byte, at: at)
        case 2: bytes[at] = byte
        default: bytes.removeSubrange(at...)
        }
        return Data(bytes)
    }
}
