/// Decoding of JSON strings and numbers from their bytes, with `JSONDecoder`'s rules and results.
package enum JSONScalars {
    /// Why a string or number could not be decoded (for the `dataCorrupted` error's description).
    struct Failure: Error {
        var message: String
    }

    // MARK: Strings

    /// The string between the quotes; `flags` are the token's (``JSONToken/simple``, ``JSONToken/ascii``).
    static func string(_ raw: UnsafeRawBufferPointer, flags: UInt8) throws(Failure) -> String {
        if flags & JSONToken.simple != 0 {
            if flags & JSONToken.ascii != 0 {
                return String(decoding: raw, as: UTF8.self)
            }
            guard let string = String(validating: raw, as: UTF8.self) else {
                throw Failure(message: "invalid UTF-8 in string")
            }
            return string
        }
        return try unescape(raw)
    }

    /// A string with escapes or control characters (the latter are an error, as in JSONDecoder).
    static func unescape(_ raw: UnsafeRawBufferPointer) throws(Failure) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(raw.count)
        var index = 0
        var chunkStart = 0
        let count = raw.count
        while index < count {
            let byte = raw[index]
            if byte == UInt8(ascii: "\\") {
                output.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[chunkStart..<index]))
                index += 1
                guard index < count else { throw Failure(message: "unterminated escape in string") }
                let escaped = raw[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escaped)
                case UInt8(ascii: "b"): output.append(0x08)
                case UInt8(ascii: "f"): output.append(0x0C)
                case UInt8(ascii: "n"): output.append(0x0A)
                case UInt8(ascii: "r"): output.append(0x0D)
                case UInt8(ascii: "t"): output.append(0x09)
                case UInt8(ascii: "u"):
                    let unit = try hexUnit(raw, at: index)
                    index += 4
                    let scalar: Unicode.Scalar
                    if UTF16.isLeadSurrogate(unit) {
                        guard index + 1 < count, raw[index] == UInt8(ascii: "\\"), raw[index + 1] == UInt8(ascii: "u") else {
                            throw Failure(message: "expected a low surrogate \\u escape after a high surrogate")
                        }
                        let trail = try hexUnit(raw, at: index + 2)
                        guard UTF16.isTrailSurrogate(trail) else {
                            throw Failure(message: "expected a low surrogate \\u escape after a high surrogate")
                        }
                        index += 6
                        scalar = UTF16.decode(UTF16.EncodedScalar([unit, trail]))
                    } else {
                        guard let single = Unicode.Scalar(unit) else {
                            throw Failure(message: "lone low surrogate \\u\(String(unit, radix: 16)) in string")
                        }
                        scalar = single
                    }
                    output.append(contentsOf: scalar.utf8)
                default:
                    throw Failure(message: "invalid escape '\\\(Character(Unicode.Scalar(escaped)))' in string")
                }
                chunkStart = index
            } else if byte < 0x20 {
                throw Failure(message: "unescaped control character 0x\(String(byte, radix: 16)) in string")
            } else {
                index += 1
            }
        }
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[chunkStart..<count]))
        // Escapes add whole, valid sequences, so validating the whole equals validating each raw chunk.
        guard let string = String(validating: output, as: UTF8.self) else {
            throw Failure(message: "invalid UTF-8 in string")
        }
        return string
    }

    /// The four hex digits of a `\u` escape at `index`.
    static func hexUnit(_ raw: UnsafeRawBufferPointer, at index: Int) throws(Failure) -> UInt16 {
        guard index + 4 <= raw.count else { throw Failure(message: "truncated \\u escape in string") }
        var unit: UInt16 = 0
        for offset in 0..<4 {
            let byte = raw[index + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte &- UInt8(ascii: "A") &+ 10
            default:
                throw Failure(
                    message: "invalid hex digit in \\u escape: '\(String(decoding: UnsafeRawBufferPointer(rebasing: raw[index..<index + 4]), as: UTF8.self))'")
            }
            unit = unit &* 16 &+ UInt16(digit)
        }
        return unit
    }

    /// The first `\u` escape in JSON text that no reader could take back — `\u0000` (which
    /// PostgreSQL's `jsonb` and text cannot hold) or a surrogate without its other half (which
    /// ``unescape(_:)`` and `JSONDecoder` refuse) — described with its byte offset; `nil` when none.
    /// Other escapes are skipped whole, so `\\u0000` (a backslash, then text) is not one.
    package static func unreadableEscape(in raw: UnsafeRawBufferPointer) -> String? {
        var index = 0
        while index < raw.count, let at = raw[index...].firstIndex(of: UInt8(ascii: "\\")) {
            guard at + 1 < raw.count, raw[at + 1] == UInt8(ascii: "u"), let unit = try? hexUnit(raw, at: at + 2) else {
                index = at + 2
                continue
            }
            index = at + 6
            if unit == 0 { return "has a \\u0000 escape at byte \(at), which PostgreSQL's jsonb cannot hold" }
            if UTF16.isTrailSurrogate(unit) { return "has a lone low surrogate escape \\u\(String(unit, radix: 16)) at byte \(at)" }
            if UTF16.isLeadSurrogate(unit) {
                guard index + 1 < raw.count, raw[index] == UInt8(ascii: "\\"), raw[index + 1] == UInt8(ascii: "u"),
                    let trail = try? hexUnit(raw, at: index + 2), UTF16.isTrailSurrogate(trail)
                else {
                    return "has a lone high surrogate escape \\u\(String(unit, radix: 16)) at byte \(at)"
                }
                index += 6
            }
        }
        return nil
    }

    // MARK: Numbers

    /// Whether `raw` is a JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    static func isValidNumber(_ raw: UnsafeRawBufferPointer) -> Bool {
        let count = raw.count
        var index = 0
        if index < count, raw[index] == UInt8(ascii: "-") { index += 1 }
        guard index < count else { return false }
        if raw[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            guard isDigit(raw[index]) else { return false }
            while index < count, isDigit(raw[index]) { index += 1 }
        }
        if index < count, raw[index] == UInt8(ascii: ".") {
            index += 1
            guard index < count, isDigit(raw[index]) else { return false }
            while index < count, isDigit(raw[index]) { index += 1 }
        }
        if index < count, raw[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < count, raw[index] == UInt8(ascii: "+") || raw[index] == UInt8(ascii: "-") { index += 1 }
            guard index < count, isDigit(raw[index]) else { return false }
            while index < count, isDigit(raw[index]) { index += 1 }
        }
        return index == count
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    enum IntegerResult<T> {
        case value(T)
        /// A valid number that is not a plain integer in range: needs JSONDecoder's slow path.
        case notPlain
        case invalid
    }

    /// A plain integer (`-?(0|[1-9][0-9]*)`) that fits `T`, parsed exactly.
    @inline(__always)
    static func plainInteger<T: FixedWidthInteger>(_ raw: UnsafeRawBufferPointer, as: T.Type) -> IntegerResult<T> {
        let count = raw.count
        var index = 0
        let negative = count > 0 && raw[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        guard index < count else { return .invalid }
        if raw[index] == UInt8(ascii: "0") {
            if index + 1 == count { return .value(0) }
            return isValidNumber(raw) ? .notPlain : .invalid
        }
        var value: T = 0
        while index < count {
            let digit = raw[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return isValidNumber(raw) ? .notPlain : .invalid }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) =
                negative
                ? times10.subtractingReportingOverflow(T(digit))
                : times10.addingReportingOverflow(T(digit))
            if overflow1 || overflow2 { return isValidNumber(raw) ? .notPlain : .invalid }
            value = next
            index += 1
        }
        return .value(value)
    }

    /// The correctly rounded `Double` or `Float` of a valid JSON number (as `strtod`/`strtof`).
    static func floatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(_ raw: UnsafeRawBufferPointer, as: T.Type) -> T? {
        if let exact: T = clinger(raw) { return exact }
        return T(String(decoding: raw, as: UTF8.self))
    }

    private static let powersOf10: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// Clinger's fast path: a decimal whose significand and power of ten are both exact in `T`
    /// is correctly rounded by one multiplication or division. Nil when the number is outside it.
    @inline(__always)
    static func clinger<T: BinaryFloatingPoint>(_ raw: UnsafeRawBufferPointer) -> T? {
        let maximumSignificand: UInt64 = T.self == Float.self ? 1 << 24 : 1 << 53
        let maximumExponent = T.self == Float.self ? 10 : 22
        let count = raw.count
        var index = 0
        let negative = count > 0 && raw[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        var significand: UInt64 = 0
        var digits = 0
        var exponent = 0
        while index < count, isDigit(raw[index]) {
            significand = significand &* 10 &+ UInt64(raw[index] &- UInt8(ascii: "0"))
            digits += 1
            index += 1
        }
        if index < count, raw[index] == UInt8(ascii: ".") {
            index += 1
            while index < count, isDigit(raw[index]) {
                significand = significand &* 10 &+ UInt64(raw[index] &- UInt8(ascii: "0"))
                digits += 1
                exponent -= 1
                index += 1
            }
        }
        guard index == count, digits <= 19, significand <= maximumSignificand, -exponent <= maximumExponent else { return nil }
        var value = T(significand)
        if exponent < 0 { value /= T(powersOf10[-exponent]) }
        return negative ? -value : value
    }

    /// Whether a number that parsed to zero really is zero (no nonzero digit before any exponent).
    static func isTrueZero(_ raw: UnsafeRawBufferPointer) -> Bool {
        for byte in raw {
            switch byte {
            case UInt8(ascii: "1")...UInt8(ascii: "9"): return false
            case UInt8(ascii: "e"), UInt8(ascii: "E"): return true
            default: continue
            }
        }
        return true
    }
}
