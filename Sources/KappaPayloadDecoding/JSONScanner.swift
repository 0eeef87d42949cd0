/// The scan behind ``JSONTape/scan(_:count:into:capacity:)``: one pass, no recursion.
struct JSONScanner {
    let base: UnsafeRawPointer
    let length: Int
    var position = 0
    var tokens: UnsafeMutablePointer<JSONToken>
    var count = 0
    var capacity: Int
    /// Whether `tokens` was allocated here (having outgrown the memory given).
    var allocated = false
    /// The token index of the innermost open container, or -1. While a container is open, its
    /// `end` holds its parent's index + 1 (0 for none), so the scan needs no stack of its own.
    var container = -1
    var depth = 0

    init(base: UnsafeRawPointer, length: Int, tokens: UnsafeMutablePointer<JSONToken>, capacity: Int) {
        self.base = base
        self.length = length
        self.tokens = tokens
        self.capacity = capacity
    }

    @inline(__always)
    func byte(at offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }

    @inline(__always)
    mutating func append(_ token: JSONToken) {
        if count == capacity { grow() }
        (tokens + count).initialize(to: token)
        count += 1
    }

    mutating func grow() {
        let larger = UnsafeMutablePointer<JSONToken>.allocate(capacity: capacity * 2)
        larger.moveInitialize(from: tokens, count: count)
        if allocated { tokens.deallocate() }
        tokens = larger
        capacity *= 2
        allocated = true
    }

    func error(_ message: String, at offset: Int? = nil) -> JSONTape.SyntaxError {
        JSONTape.SyntaxError(offset: offset ?? position, message: message)
    }

    /// Skips whitespace; the next byte (not consumed), or an error at the end.
    @inline(__always)
    mutating func next(_ context: StaticString) throws(JSONTape.SyntaxError) -> UInt8 {
        if position < length {
            let byte = byte(at: position)
            if byte > 0x20 { return byte }
        }
        while position < length {
            let byte = byte(at: position)
            switch byte {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return byte
            }
        }
        throw error("unexpected end of data \(context)")
    }

    mutating func scanDocument() throws(JSONTape.SyntaxError) {
        // The innermost open container's kind and number of values so far (kept here, and in its
        // token only while a nested container is open).
        var inObject = false
        var values: UInt32 = 0
        // Whether an object member's key comes next (scanned in one place, so that it is inlined).
        var keyNext = false
        while true {
            if keyNext {
                // A member's key and the colon after it.
                let quote = try next("in object")
                guard quote == UInt8(ascii: "\"") else { throw error("expected a key in object, found \(describe(quote))") }
                if try scanString() != JSONToken.simple | JSONToken.ascii {
                    tokens[container].flags &= ~JSONToken.simpleASCIIKeys
                }
                let colon = try next("in object")
                guard colon == UInt8(ascii: ":") else { throw error("expected ':' in object, found \(describe(colon))") }
                position += 1
                keyNext = false
            }
            // A value starts here.
            let byte = try next("")
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < JSONTape.maximumDepth else {
                    throw error("too many nested arrays or objects (more than \(JSONTape.maximumDepth))")
                }
                if container >= 0 { tokens[container].count = values }
                inObject = byte == UInt8(ascii: "{")
                values = 0
                append(
                    JSONToken(
                        kind: inObject ? .object : .array, flags: inObject ? JSONToken.simpleASCIIKeys : 0,
                        start: UInt32(truncatingIfNeeded: position), end: UInt32(truncatingIfNeeded: container + 1), count: 0))
                container = count - 1
                depth += 1
                position += 1
                let first = try next(inObject ? "in object" : "in array")
                if first == (inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    position += 1
                    closeContainer(&inObject, &values)
                } else {
                    keyNext = inObject
                    continue
                }
            case UInt8(ascii: "\""):
                try scanString()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                scanNumber()
            case UInt8(ascii: "t"):
                try scanLiteral("true", .true)
            case UInt8(ascii: "f"):
                try scanLiteral("false", .false)
            case UInt8(ascii: "n"):
                try scanLiteral("null", .null)
            default:
                throw error("unexpected character \(describe(byte))")
            }
            // A value ended: continue its container (or several, as they close), or end the document.
            while true {
                guard container >= 0 else {
                    while position < length {
                        switch self.byte(at: position) {
                        case 0x20, 0x0A, 0x0D, 0x09: position += 1
                        case let extra: throw error("unexpected character \(describe(extra)) after the top-level value")
                        }
                    }
                    return
                }
                values += 1
                let close = inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                let separator = try next(inObject ? "in object" : "in array")
                if separator == close {
                    position += 1
                    closeContainer(&inObject, &values)
                    continue
                }
                guard separator == UInt8(ascii: ",") else {
                    throw error("unexpected character \(describe(separator)) \(inObject ? "in object" : "in array")")
                }
                position += 1
                // As JSONDecoder: a trailing comma before the closing bracket is accepted.
                if try next(inObject ? "in object" : "in array") == close {
                    position += 1
                    closeContainer(&inObject, &values)
                    continue
                }
                keyNext = inObject
                break
            }
        }
    }

    /// Closes the innermost container (with `values` values) and resumes its parent's state.
    @inline(__always)
    mutating func closeContainer(_ inObject: inout Bool, _ values: inout UInt32) {
        let parent = Int(tokens[container].end) - 1
        tokens[container].end = UInt32(truncatingIfNeeded: count)
        tokens[container].count = values
        container = parent
        depth -= 1
        if parent >= 0 {
            inObject = tokens[parent].kind == .object
            values = tokens[parent].count
        }
    }

    /// A string: only its extent is checked here (as JSONDecoder's scanner does); escapes, control
    /// characters and UTF-8 are checked when it is decoded.
    @inline(__always) @discardableResult
    mutating func scanString() throws(JSONTape.SyntaxError) -> UInt8 {
        let start = position + 1 // past the opening quote
        var offset = start
        var highBits: UInt64 = 0
        // Eight bytes at a time up to the first quote, backslash or control character.
        while offset + 8 <= length {
            let word = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let special = Self.quoteBackslashOrControl(word)
            if special == 0 {
                highBits |= word
                offset += 8
                continue
            }
            let ordinary = special.trailingZeroBitCount / 8 // bytes before the first special one
            highBits |= ordinary == 0 ? 0 : word & (UInt64.max >> (64 - 8 * ordinary))
            offset += ordinary
            break
        }
        var flags = JSONToken.simple | JSONToken.ascii
        while offset < length {
            let byte = byte(at: offset)
            if byte == UInt8(ascii: "\"") {
                if highBits & 0x8080_8080_8080_8080 != 0 { flags &= ~JSONToken.ascii }
                append(
                    JSONToken(
                        kind: .string, flags: flags, start: UInt32(truncatingIfNeeded: start),
                        end: UInt32(truncatingIfNeeded: offset), count: 0))
                position = offset + 1
                return flags
            }
            highBits |= UInt64(byte)
            if byte == UInt8(ascii: "\\") {
                flags &= ~JSONToken.simple
                offset += 1
                guard offset < length else { break }
                if self.byte(at: offset) == UInt8(ascii: "u") {
                    guard length - offset > 4 else { break }
                    for hex in offset + 1...offset + 4 where self.byte(at: hex) == UInt8(ascii: "\"") {
                        throw error("invalid \\u escape in string", at: offset - 1)
                    }
                    offset += 4
                }
            } else if byte < 0x20 {
                flags &= ~JSONToken.simple
            }
            offset += 1
        }
        position = length
        throw error("unexpected end of data in string")
    }

    /// The high bit of each of the eight bytes (loaded little-endian) that is `"`, `\` or below
    /// 0x20. Exact for the first such byte; later bytes may be marked falsely, which is harmless.
    @inline(__always)
    static func quoteBackslashOrControl(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quotes = word ^ (ones &* 0x22)
        let backslashes = word ^ (ones &* 0x5C)
        let zeroQuote = (quotes &- ones) & ~quotes
        let zeroBackslash = (backslashes &- ones) & ~backslashes
        let control = (word &- ones &* 0x20) & ~word
        return (zeroQuote | zeroBackslash | control) & 0x8080_8080_8080_8080
    }

    @inline(__always)
    mutating func scanLiteral(_ word: StaticString, _ kind: JSONToken.Kind) throws(JSONTape.SyntaxError) {
        let size = word.utf8CodeUnitCount
        guard length - position >= size else { throw error("unexpected end of data in \(word)") }
        for offset in 1..<size where byte(at: position + offset) != word.utf8Start[offset] {
            throw error("unexpected character \(describe(byte(at: position + offset))) in \(word)", at: position + offset)
        }
        append(
            JSONToken(
                kind: kind, flags: 0, start: UInt32(truncatingIfNeeded: position),
                end: UInt32(truncatingIfNeeded: position + size), count: 0))
        position += size
    }

    /// A number's extent: as JSONDecoder, any run of `0-9 . + - e E`; its form is checked when decoded.
    @inline(__always)
    mutating func scanNumber() {
        let start = position
        var offset = position + 1
        scan: while offset < length {
            let byte = byte(at: offset)
            if byte &- UInt8(ascii: "0") < 10 {
                offset += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "."), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "e"), UInt8(ascii: "E"):
                offset += 1
            default:
                break scan
            }
        }
        append(
            JSONToken(
                kind: .number, flags: 0, start: UInt32(truncatingIfNeeded: start),
                end: UInt32(truncatingIfNeeded: offset), count: 0))
        position = offset
    }

    func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x\(String(byte, radix: 16, uppercase: true))"
    }
}
