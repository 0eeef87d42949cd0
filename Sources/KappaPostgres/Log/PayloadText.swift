import Foundation

/// What the log refuses in a payload's (or metadata's) text beyond what PostgreSQL's `json` checks.
///
/// `json` stores any JSON text, but a `\u0000` escape and a lone surrogate escape (`\uD800` without its
/// low half) are refused by `jsonb` — so by `payload::jsonb` and by SQL that reads fields — and a lone
/// surrogate by JSON decoders (`PayloadDecoder`, Foundation's `JSONDecoder`). The log cannot be
/// changed afterwards, so such an event would fail every reader for good: it is refused at append,
/// as it was when payloads were stored as `jsonb`. Text that is not UTF-8 is refused too (it would be
/// changed on the way). Swift's encoders never write any of these for a Swift `String`, except
/// `\u0000` for a string that holds U+0000.
enum PayloadText {
    /// Why `text` cannot be stored, or `nil` when it can.
    static func problem(_ text: Data) -> String? {
        text.withUnsafeBytes(problem)
    }

    static func problem(_ raw: UnsafeRawBufferPointer) -> String? {
        guard String(validating: raw, as: UTF8.self) != nil else { return "is not UTF-8 text" }
        guard let base = raw.baseAddress else { return nil }
        var offset = 0
        while offset < raw.count, let found = memchr(base + offset, Int32(UInt8(ascii: "\\")), raw.count - offset) {
            let at = base.distance(to: UnsafeRawPointer(found))
            // An escape other than \u (\\, \", \n…) is two bytes; skipping both keeps `\\u` from looking like one.
            guard at + 1 < raw.count, raw[at + 1] == UInt8(ascii: "u"), let unit = hex4(raw, at + 2) else {
                offset = at + 2
                continue
            }
            switch unit {
            case 0:
                return "has a \\u0000 escape at byte \(at), which PostgreSQL's jsonb cannot hold"
            case 0xDC00...0xDFFF:
                return "has a lone low surrogate escape \\u\(String(unit, radix: 16)) at byte \(at)"
            case 0xD800...0xDBFF:
                guard at + 11 < raw.count, raw[at + 6] == UInt8(ascii: "\\"), raw[at + 7] == UInt8(ascii: "u"),
                      let low = hex4(raw, at + 8), (0xDC00...0xDFFF).contains(low) else {
                    return "has a lone high surrogate escape \\u\(String(unit, radix: 16)) at byte \(at)"
                }
                offset = at + 12
            default:
                offset = at + 6
            }
        }
        return nil
    }

    /// The four hex digits at `offset` as a number; `nil` when they are not there (PostgreSQL refuses that text).
    private static func hex4(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> Int? {
        guard offset + 4 <= raw.count else { return nil }
        var value = 0
        for byte in raw[offset..<offset + 4] {
            let digit: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(byte - UInt8(ascii: "A")) + 10
            default: return nil
            }
            value = value * 16 + digit
        }
        return value
    }
}
