/// Writes a ``JSONValue`` as JSON text that JSONDecoder accepts, in a random one of the many ways:
/// whitespace between tokens, characters escaped or not (`\u` escapes in either case, surrogate
/// pairs beyond the BMP, `\/`), and now and then a trailing comma, which JSONDecoder accepts.
package struct JSONWriter {
    private(set) package var bytes: [UInt8] = []
    private var random: SplitMix64
    /// How often each random choice is taken: 0 for the plainest text.
    private let variety: Double

    /// `value` as text, formatted by `random`. With `plain`, as compact and unescaped as JSON allows.
    package static func text(_ value: JSONValue, _ random: inout SplitMix64, plain: Bool = false) -> [UInt8] {
        var writer = JSONWriter(random: SplitMix64(seed: random.next()), variety: plain ? 0 : random.pick([0.02, 0.1, 0.3]))
        writer.space()
        writer.write(value)
        writer.space()
        return writer.bytes
    }

    private mutating func maybe(_ probability: Double) -> Bool {
        variety > 0 && random.chance(probability * variety / 0.1)
    }

    private mutating func space() {
        guard maybe(0.2) else { return }
        for _ in 0..<random.int(1...3) { bytes.append(random.pick([0x20, 0x0A, 0x0D, 0x09])) }
    }

    private mutating func write(_ value: JSONValue) {
        switch value {
        case .null: append("null")
        case .bool(let flag): append(flag ? "true" : "false")
        case .number(let text): append(text)
        case .string(let text): string(text)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                space()
                write(element)
                space()
            }
            if !elements.isEmpty, maybe(0.02) { bytes.append(UInt8(ascii: ",")) }
            space()
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            for (index, (key, member)) in members.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                space()
                string(key)
                space()
                bytes.append(UInt8(ascii: ":"))
                space()
                write(member)
                space()
            }
            if !members.isEmpty, maybe(0.02) { bytes.append(UInt8(ascii: ",")) }
            space()
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private mutating func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    private mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": append("\\\"")
            case "\\": append("\\\\")
            case "\n" where !maybe(0.3): append("\\n")
            case "\t" where !maybe(0.3): append("\\t")
            case "\r" where !maybe(0.3): append("\\r")
            case "\u{8}" where !maybe(0.3): append("\\b")
            case "\u{C}" where !maybe(0.3): append("\\f")
            case "/" where maybe(0.3): append("\\/")
            case _ where scalar.value < 0x20 || maybe(0.1): unicodeEscape(scalar)
            default: bytes.append(contentsOf: String(scalar).utf8)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// `\uXXXX`, or two of them (a surrogate pair) beyond the BMP; hex digits in either case.
    private mutating func unicodeEscape(_ scalar: Unicode.Scalar) {
        let uppercase = random.chance(0.5)
        for unit in String(scalar).utf16 {
            let hex = String(unit, radix: 16, uppercase: uppercase)
            append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
        }
    }
}
