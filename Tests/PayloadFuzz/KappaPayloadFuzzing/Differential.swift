import Foundation
import KappaPayloadDecoding

/// PayloadDecoder against Foundation's JSONDecoder configured as Kappa's `EventRegistry` configures
/// it: for one input and one type, the same value, or both throw.
package enum Differential {
    /// How closely the two decoders' errors must agree when both throw.
    package enum Errors: Sendable {
        /// The same ``signature(_:)``: `DecodingError` case, type and (but for `dataCorrupted`) path.
        case same
        /// Any error. For types with dictionaries, whose errors JSONDecoder reports in its
        /// dictionary's (random) key order when several entries are wrong.
        case any
    }

    package static let foundation: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    /// Decodes `input` as `T` with both decoders; nil when they agree, else what differs.
    package static func compare<T: Decodable & Equatable>(_ type: T.Type, _ input: Data, errors: Errors = .same) -> Mismatch? {
        var accepted = false
        return compare(type, input, errors: errors, foundationAccepted: &accepted)
    }

    /// ``compare(_:_:errors:)``, telling also whether JSONDecoder decoded the input.
    package static func compare<T: Decodable & Equatable>(
        _ type: T.Type, _ input: Data, errors: Errors,
        foundationAccepted: inout Bool
    ) -> Mismatch? {
        let ours = Result { try PayloadDecoder().decode(T.self, from: input) }
        if FoundationQuirks.crashesJSONDecoder(input) {
            // Not for JSONDecoder (see FoundationQuirks): nested too deep, it must fail here.
            guard case .failure(DecodingError.dataCorrupted) = ours else {
                return Mismatch(type: "\(T.self)", document: input, difference: "nested past 512, PayloadDecoder gave \(ours)")
            }
            return nil
        }
        let theirs = Result { try foundation.decode(T.self, from: input) }
        if case .success = theirs { foundationAccepted = true }
        guard let difference = difference(theirs, ours, errors) else { return nil }
        // JSONDecoder's only known mistake a valid document can meet (see FoundationQuirks).
        if let rewritten = FoundationQuirks.zerosWithoutExponents(input),
            Self.difference(Result { try foundation.decode(T.self, from: rewritten) }, ours, errors) == nil
        {
            return nil
        }
        return Mismatch(type: "\(T.self)", document: input, difference: difference)
    }

    /// How `ours` differs from `theirs`, or nil when they agree.
    static func difference<T: Equatable>(_ theirs: Result<T, any Error>, _ ours: Result<T, any Error>, _ errors: Errors) -> String? {
        switch (theirs, ours) {
        case (.success(let expected), .success(let actual)):
            expected == actual ? nil : different("\(expected)", "\(actual)")
        case (.failure(let expected), .failure(let actual)):
            errors == .any || signature(expected) == signature(actual)
                ? nil
                : "JSONDecoder threw \(signature(expected)), PayloadDecoder threw \(signature(actual)): \(actual)"
        case (.success(let expected), .failure(let actual)):
            "JSONDecoder gave \(expected), PayloadDecoder threw \(actual)"
        case (.failure(let expected), .success(let actual)):
            "JSONDecoder threw \(signature(expected)), PayloadDecoder gave \(actual)"
        }
    }

    /// Two values' descriptions, from a little before where they first differ when they are long.
    static func different(_ expected: String, _ actual: String) -> String {
        guard expected.count + actual.count > 400 else { return "JSONDecoder gave \(expected), PayloadDecoder gave \(actual)" }
        let same = zip(expected, actual).prefix { $0 == $1 }.count
        func excerpt(_ text: String) -> String {
            let start = text.index(text.startIndex, offsetBy: max(0, same - 60))
            return (start == text.startIndex ? "" : "…") + text[start...].prefix(200) + "…"
        }
        return "JSONDecoder gave \(excerpt(expected)), PayloadDecoder gave \(excerpt(actual))"
    }

    /// An error's case, its type, and (but for `dataCorrupted`) its coding path. JSONDecoder's own
    /// `JSONError`, which its containers throw into `init(from:)` and which becomes `dataCorrupted`
    /// at the top, counts as `dataCorrupted`.
    package static func signature(_ error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String { context.codingPath.map(\.stringValue).joined(separator: ".") }
        switch error {
        case DecodingError.dataCorrupted: return "dataCorrupted"
        case DecodingError.keyNotFound(let key, let context): return "keyNotFound(\(key.stringValue)) at \(path(context))"
        case DecodingError.typeMismatch(let type, let context): return "typeMismatch(\(type)) at \(path(context))"
        case DecodingError.valueNotFound(let type, let context): return "valueNotFound(\(type)) at \(path(context))"
        default: return "\(type(of: error))" == "JSONError" ? "dataCorrupted" : "\(type(of: error)): \(error)"
        }
    }
}

/// An input on which the decoders disagree.
package struct Mismatch: Error, CustomStringConvertible, Sendable {
    package var type: String
    package var document: Data
    package var difference: String

    package var description: String {
        "\(type) from \(Self.show(document)): \(difference)"
    }

    /// The document in quotes, unambiguous and printable: ASCII as is (`"` and `\\` escaped), other
    /// characters as `\u{…}`, bytes that are not UTF-8 as `\xHH`; cut after `limit` bytes.
    package static func show(_ document: Data, limit: Int = 2_000) -> String {
        var text = "\""
        var bytes = document.prefix(limit)[...]
        while let first = bytes.first {
            let length = first < 0x80 ? 1 : first >= 0xF0 ? 4 : first >= 0xE0 ? 3 : 2
            if first >= 0x20, first < 0x7F {
                text += first == 0x22 ? "\\\"" : first == 0x5C ? "\\\\" : String(UnicodeScalar(first))
                bytes = bytes.dropFirst()
            } else if first >= 0xC2, let scalar = String(validating: bytes.prefix(length), as: UTF8.self)?.unicodeScalars.first {
                text += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                bytes = bytes.dropFirst(length)
            } else {
                text += first < 0x80 ? "\\u{\(String(first, radix: 16, uppercase: true))}" : "\\x\(String(first, radix: 16, uppercase: true))"
                bytes = bytes.dropFirst()
            }
        }
        text += "\""
        return document.count > limit ? text + "… (\(document.count) bytes)" : text
    }
}
