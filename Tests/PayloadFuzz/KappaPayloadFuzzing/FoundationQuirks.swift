import Foundation

/// Where Foundation's JSONDecoder (Swift 6.3 on Linux) is wrong, and PayloadDecoder deliberately
/// does not follow it. The comparison makes room for exactly these, and no more.
enum FoundationQuirks {
    /// Whether JSONDecoder would crash on `document` rather than throw: it traps (in
    /// `JSONError.SourceLocation`) when the `[` that opens the 513th nested container is followed
    /// by nothing or by line breaks only. Such a document is nested too deep for any decoder; the
    /// check is wider than the crash (any whitespace after that `[`), which costs only comparisons.
    static func crashesJSONDecoder(_ document: Data) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        var index = document.startIndex
        while index < document.endIndex {
            let byte = document[index]
            index += 1
            if inString {
                (inString, escaped) = JSONNumberText.afterStringByte(byte, escaped: escaped)
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "["):
                depth += 1
                if depth > 512 {
                    return document[index...].allSatisfy { [0x20, 0x0A, 0x0D, 0x09].contains($0) }
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return false
    }

    /// `document` with each number that is a zero with an exponent (`0e5`, `-0.00e1`) written as
    /// `0` (or `-0`), or nil when it has none. JSONDecoder refuses some of these as `Double` and
    /// `Float` as an underflow (`0e5`, `0e9` and `0.00e1`, but not `0e10`, `0E+5` or `0.0e5`);
    /// they are zero, and PayloadDecoder reads them as zero. Decoded as written without the
    /// exponent, JSONDecoder's results are what PayloadDecoder's must equal.
    static func zerosWithoutExponents(_ document: Data) -> Data? {
        let bytes = Array(document)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var changed = false
        var inString = false
        var escaped = false
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if inString {
                (inString, escaped) = JSONNumberText.afterStringByte(byte, escaped: escaped)
                output.append(byte)
                index += 1
                continue
            }
            if byte == UInt8(ascii: "\"") { inString = true }
            guard byte == UInt8(ascii: "-") || JSONNumberText.isDigit(byte) else {
                output.append(byte)
                index += 1
                continue
            }
            // A number as JSONDecoder's scanner takes it: a run of `0-9 . + - e E`.
            var end = index + 1
            while end < bytes.count, JSONNumberText.isNumberByte(bytes[end]) { end += 1 }
            let number = bytes[index..<end]
            if JSONNumberText.isZeroWithExponent(number) {
                output.append(contentsOf: number.first == UInt8(ascii: "-") ? Array("-0".utf8) : [UInt8(ascii: "0")])
                changed = true
            } else {
                output.append(contentsOf: number)
            }
            index = end
        }
        return changed ? Data(output) : nil
    }
}

/// The characters of JSON numbers (and of strings, to skip them).
enum JSONNumberText {
    /// Whether a string goes on after `byte`, and whether the next byte is escaped.
    static func afterStringByte(_ byte: UInt8, escaped: Bool) -> (inString: Bool, escaped: Bool) {
        if escaped { return (true, false) }
        return (byte != UInt8(ascii: "\""), byte == UInt8(ascii: "\\"))
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    static func isNumberByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
    }

    /// `-?0(\.0+)?[eE][+-]?[0-9]+`
    static func isZeroWithExponent(_ number: ArraySlice<UInt8>) -> Bool {
        var rest = number[...]
        if rest.first == UInt8(ascii: "-") { rest = rest.dropFirst() }
        guard rest.first == UInt8(ascii: "0") else { return false }
        rest = rest.dropFirst()
        if rest.first == UInt8(ascii: ".") {
            rest = rest.dropFirst()
            let zeros = rest.prefix { $0 == UInt8(ascii: "0") }.count
            guard zeros > 0 else { return false }
            rest = rest.dropFirst(zeros)
        }
        guard rest.first == UInt8(ascii: "e") || rest.first == UInt8(ascii: "E") else { return false }
        rest = rest.dropFirst()
        if rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: "-") { rest = rest.dropFirst() }
        return !rest.isEmpty && rest.allSatisfy(isDigit)
    }
}
