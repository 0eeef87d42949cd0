/// Breaks documents: in their bytes (a flipped bit, bytes inserted, deleted or replaced, the text
/// cut short, a NUL, UTF-8 that is not valid, an enormous number, nesting past the limit, a byte
/// order mark or UTF-16) or in their values (a value replaced by one of another kind, a member
/// dropped), which keeps them JSON but makes them wrong for their type.
package enum Mutator {
    /// Bytes the scanner treats specially.
    static let structural = Array(#"{}[]",:"\/ 0123456789-+.eEtrufalsn"#.utf8) + [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x7F, 0x80, 0xBF, 0xC3, 0xFF]

    /// Sequences that are not UTF-8: a lone lead byte, a lone continuation, an overlong form, a
    /// surrogate, a code point past U+10FFFF, a truncated four-byte sequence.
    static let invalidUTF8: [[UInt8]] = [
        [0xC3], [0x80], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
        [0xF0, 0x9F, 0x98], [0xFE], [0xFF, 0xFF],
    ]

    /// Text that breaks strings, escapes and numbers.
    static let fragments = [
        #"\"#, #"\u"#, #"\uD800"#, #"\uDC00"#, #"\uD83D\u0041"#, #"\u12"#, #"\x"#, "\"", "\u{0}", "1e", "-", "--1",
        "01", ".5", "1.", "NaN", "Infinity", "true", "nul", ",,", ",]", ",}", "{", "[", "]", "}", ":", "\u{FEFF}",
    ]

    /// One to three changes to `document`'s bytes.
    package static func bytes(_ document: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = document
        for _ in 0..<random.int(1...3) { change(&bytes, &random) }
        return bytes
    }

    static func change(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        let at = random.int(0...bytes.count) // an insertion point; for a byte, `at` < count
        let within = !bytes.isEmpty && at < bytes.count
        switch random.int(0...13) {
        case 0 where within: bytes[at] ^= 1 << UInt8(random.int(0...7))
        case 1 where within: bytes[at] = random.pick(structural)
        case 2: bytes.insert(random.pick(structural), at: at)
        case 3 where within: bytes.removeSubrange(at..<min(bytes.count, at + random.int(1...8)))
        case 4: bytes.removeSubrange(at...)
        case 5: bytes.insert(0, at: at)
        case 6: bytes.insert(contentsOf: random.pick(invalidUTF8), at: insideString(bytes, &random) ?? at)
        case 7: bytes.insert(contentsOf: random.pick(fragments).utf8, at: insideString(bytes, &random) ?? at)
        case 8: bytes.insert(contentsOf: random.pick(fragments).utf8, at: at)
        case 9: enormousNumber(&bytes, &random)
        case 10: deepen(&bytes, &random)
        case 11 where within:
            // A slice copied elsewhere.
            let slice = bytes[at..<min(bytes.count, at + random.int(1...32))]
            bytes.insert(contentsOf: slice, at: random.int(0...bytes.count))
        case 12: encodingMark(&bytes, &random)
        default: bytes.insert(contentsOf: random.pick([[0x20], [0x0B], [0x0C], [0xC2, 0xA0], [0x0D, 0x0A]]), at: at)
        }
    }

    /// A point just after a quote, when there is one.
    static func insideString(_ bytes: [UInt8], _ random: inout SplitMix64) -> Int? {
        let quotes = bytes.indices.filter { bytes[$0] == UInt8(ascii: "\"") }
        return quotes.isEmpty ? nil : random.pick(quotes) + 1
    }

    /// Digits, or an exponent, added to a number: far past any integer type and `Double`'s range.
    static func enormousNumber(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        let digits = bytes.indices.filter { bytes[$0] &- UInt8(ascii: "0") < 10 }
        let at = digits.isEmpty ? random.int(0...bytes.count) : random.pick(digits)
        let text = random.pick([
            String(repeating: "9", count: random.int(20...400)), "e999", "e-999", "e+99999999999999999999",
            "." + String(repeating: "0", count: random.int(300...1_000)) + "1", "0000000000",
        ])
        bytes.insert(contentsOf: text.utf8, at: at)
    }

    /// Opening (and maybe closing) brackets around or inside the document, near the nesting limit.
    static func deepen(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        let depth = random.chance(0.5) ? random.int(505...515) : random.int(1...2_000)
        let open = random.chance(0.7) ? "[" : "{\"a\":"
        let close = open == "[" ? "]" : "}"
        if random.chance(0.6) {
            bytes = Array(String(repeating: open, count: depth).utf8) + bytes + Array(String(repeating: close, count: depth).utf8)
        } else {
            bytes.insert(contentsOf: String(repeating: open, count: depth).utf8, at: random.int(0...bytes.count))
        }
    }

    /// A byte order mark, or the text in UTF-16 or UTF-32 (which PayloadDecoder leaves to JSONDecoder).
    static func encodingMark(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        switch random.int(0...3) {
        case 0: bytes.insert(contentsOf: [0xEF, 0xBB, 0xBF], at: 0)
        case 1: bytes.insert(contentsOf: [0xEF, 0xBB, 0xBF], at: random.int(0...bytes.count))
        case 2: bytes = bytes.flatMap { [$0, 0] } // UTF-16LE for ASCII text
        default: bytes.insert(contentsOf: random.pick([[0xFE, 0xFF], [0xFF, 0xFE], [0x00, 0x00, 0xFE, 0xFF]]), at: 0)
        }
    }

    /// `document` with one value made wrong for its type: replaced by a value of another kind,
    /// emptied, or a member dropped.
    package static func value(_ document: JSONValue, _ random: inout SplitMix64) -> JSONValue {
        let index = random.int(0...document.count - 1)
        return document.replacing(index) { value in
            switch (value, random.int(0...3)) {
            case (.object(var members), 0) where !members.isEmpty:
                members.remove(at: random.int(0...members.count - 1))
                return .object(members)
            case (.array(var elements), 0) where !elements.isEmpty:
                elements.remove(at: random.int(0...elements.count - 1))
                return .array(elements)
            case (_, 1):
                return .null
            default:
                return ShapeGenerator.any(&random, depth: 3)
            }
        }
    }
}
