/// Random scalar values as JSON text: integers at and near their types' limits and in the forms
/// JSONDecoder takes for integers (`1.0`, `1e2`), doubles from every part of the range, strings
/// from all of Unicode, ISO 8601 dates.
package enum RandomScalars {
    /// An integer that fits `T`, as text; with `variety`, now and then in a form with a fraction
    /// or exponent that JSONDecoder still reads as that integer.
    static func integer<T: FixedWidthInteger>(_ type: T.Type, _ random: inout SplitMix64) -> String {
        let value: T
        switch random.int(0...9) {
        case 0: value = random.pick([T.min, T.max, 0, 1, T.min &+ 1, T.max &- 1])
        case 1...5: value = T(truncatingIfNeeded: random.int(-1_000...1_000))
        default: value = T.random(in: T.min...T.max, using: &random)
        }
        let text = "\(value)"
        // Other spellings of the same integer; JSONDecoder converts them through Double, so only
        // below 2^53, where that is exact.
        guard value.magnitude < 1 << 53, random.chance(0.15) else { return text }
        switch random.int(0...4) {
        case 0: return text + ".0"
        case 1: return text + random.pick(["e0", "E+0", "e-0", "e00"])
        case 2 where value != 0: return text + "0e-1"
        case 3 where value != 0 && value % 100 == 0: return "\(value / 100)e2"
        default: return value == 0 ? random.pick(["-0", "0.000", "-0.0", "0e5"]) : text
        }
    }

    /// A finite double as text.
    static func double(_ random: inout SplitMix64) -> String {
        switch random.int(0...9) {
        case 0:
            return random.pick([
                "0", "-0", "0.0", "-0.0", "1", "-1", "0.1", "1e-7", "1.7976931348623157e308", "-1.7976931348623157e308",
                "2.2250738585072014e-308", "2.225073858507201e-308", "4.9e-324", "5e-324", "1e308", "1E-300", "123456789012345678",
                "0.30000000000000004", "9007199254740993", "1.00000000000000011102230246251565404236316680908203125",
            ])
        case 1, 2:
            return "\(random.int(-100_000...100_000))"
        case 3, 4:
            return "\(Double.random(in: -1e6...1e6, using: &random))"
        case 5, 6:
            // Any finite double, as Swift writes it (shortest text that reads back the same).
            var double: Double
            repeat { double = Double(bitPattern: random.next()) } while !double.isFinite
            return "\(double)"
        case 7:
            // Many digits: the slow, correctly rounded path.
            let digits = (0..<random.int(1...30)).map { _ in String(random.int(0...9)) }.joined()
            return (random.chance(0.3) ? "-" : "") + "0." + digits
        default:
            let digits = (0..<random.int(1...25)).map { _ in String(random.int(0...9)) }.joined()
            let exponent = random.int(-300...280)
            let marker = random.pick(["e", "E"]) + (exponent >= 0 && random.chance(0.5) ? "+" : "")
            return "\(random.int(1...9)).\(digits)\(marker)\(exponent)"
        }
    }

    /// A finite float as text: `double`'s forms within `Float`'s range, which JSONDecoder refuses to
    /// round to infinity or to zero.
    static func float(_ random: inout SplitMix64) -> String {
        switch random.int(0...3) {
        case 0:
            return random.pick([
                "0", "-0.0", "1", "3.4028235e38", "-3.4028234e38", "1.17549435e-38", "1.4e-45", "1e-45", "16777217", "0.1",
                "1.0000000596046447753906251", "1.000000059604644775390625",
            ])
        case 1:
            var float: Float
            repeat { float = Float(bitPattern: UInt32(truncatingIfNeeded: random.next())) } while !float.isFinite
            return "\(float)"
        case 2:
            return "\(Float.random(in: -1e6...1e6, using: &random))"
        default:
            let digits = (0..<random.int(1...25)).map { _ in String(random.int(0...9)) }.joined()
            return "\(random.int(1...9)).\(digits)e\(random.int(-37...37))"
        }
    }

    /// Characters of every kind: escapes, controls, non-characters, combining marks, beyond the BMP.
    static let characters: [Unicode.Scalar] = [
        "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\r", "\u{0}", "\u{1}", "\u{8}", "\u{C}",
        "\u{1F}", "\u{7F}", "\u{80}", "\u{A0}", "é", "ß", "\u{301}", "\u{2028}", "\u{2029}", "€", "中",
        "\u{FEFF}", "\u{FFFD}", "\u{FFFE}", "\u{FFFF}", "😀", "𝄞", "\u{10000}", "\u{10FFFF}", "\u{212A}",
    ]

    static func string(_ random: inout SplitMix64) -> String {
        switch random.int(0...5) {
        case 0: return random.pick(["", "x", "SKU-00042", "alpha", "https://example.com/a?b=c", "2024-01-02T03:04:05Z"])
        case 1: return String((0..<random.int(1...40)).map { _ in Character(Unicode.Scalar(UInt8(random.int(0x20...0x7E)))) })
        default:
            var scalars = String.UnicodeScalarView()
            for _ in 0..<random.int(0...12) {
                if random.chance(0.7) {
                    scalars.append(random.pick(characters))
                } else if let scalar = Unicode.Scalar(UInt32(random.int(0...0x10FFFF))) {
                    scalars.append(scalar)
                }
            }
            return String(scalars)
        }
    }

    /// A key: mostly short ASCII, sometimes any string.
    static func key(_ random: inout SplitMix64) -> String {
        random.chance(0.7) ? random.pick(["id", "name", "x", "value", "a", "b", "é", "e\u{301}", "K", "\u{212A}", "", " "]) : string(&random)
    }

    /// An ISO 8601 timestamp `.iso8601` reads: mostly `yyyy-MM-ddTHH:mm:ssZ` (the decoder's fast
    /// path), else with fractional seconds, an offset, or a year before 1583 (its slow path).
    static func date(_ random: inout SplitMix64) -> String {
        let year = random.chance(0.9) ? random.int(1583...9999) : random.int(1...1582)
        let month = random.int(1...12)
        let day = random.int(1...(month == 2 ? 28 : 30))
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let yyyy = String(repeating: "0", count: 4 - "\(year)".count) + "\(year)"
        var text = "\(yyyy)-\(two(month))-\(two(day))T\(two(random.int(0...23))):\(two(random.int(0...59))):\(two(random.int(0...59)))"
        if random.chance(0.15) { text += "." + (0..<random.int(1...6)).map { _ in String(random.int(0...9)) }.joined() }
        if random.chance(0.15) {
            let sign = random.pick(["+", "-"])
            text +=
                random.chance(0.5)
                ? "\(sign)\(two(random.int(0...14))):\(two(random.pick([0, 30, 45])))"
                : "\(sign)\(two(random.int(0...14)))\(two(random.pick([0, 30, 45])))"
        } else {
            text += "Z"
        }
        return text
    }
}
