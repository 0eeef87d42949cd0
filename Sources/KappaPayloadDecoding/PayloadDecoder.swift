import Foundation

/// Decodes event payloads from JSON, with the results of Foundation's `JSONDecoder` configured as
/// Kappa's `EventRegistry` configures it (`dateDecodingStrategy = .iso8601`, every other option at its
/// default) — several times faster.
///
/// ```swift
/// let added = try PayloadDecoder().decode(ItemAdded.self, from: payload)
/// ```
///
/// ## What it accepts
/// JSON text as `JSONDecoder` accepts it: UTF-8 (RFC 8259), with or without a byte order mark,
/// any value at the top level (fragments such as `"text"` or `42` too), and `JSONDecoder`'s
/// leniencies: trailing commas in arrays and objects, and strings and numbers checked only when
/// they are decoded, so a malformed value under a key the type does not read is no error.
/// Payloads in UTF-16 or UTF-32 (which `JSONDecoder` detects) are handed to `JSONDecoder`.
///
/// ## Same results as JSONDecoder
/// - Keys match as Swift strings (canonical equivalence); of repeated keys the **first** counts.
/// - Integers parse exactly with overflow checks for every `FixedWidthInteger`; a number with a
///   fraction or exponent becomes an integer when `JSONDecoder` would make it one (`1.0`, `1e2`,
///   even `1e-400` as 0; `1.5` and out-of-range values are errors).
/// - `Double` and `Float` are correctly rounded; overflow to infinity and underflow to zero
///   are errors. One deliberate difference: a zero written with an exponent (`0e5`, `0.00e1`) is
///   zero, where Swift 6.3's `JSONDecoder` refuses some such spellings as an underflow.
/// - `Date`: ISO 8601 via `Date.ISO8601FormatStyle().parse` (what `.iso8601` calls), `Data`: base64,
///   `URL`: `URL(string:)`, `Decimal`: `Decimal`'s parser, each only for the value in the JSON
///   that `JSONDecoder` gives them.
/// - `decodeIfPresent` returns nil for a missing key and for `null`; `null` for a `Bool` is a
///   `typeMismatch` (for other types `valueNotFound`).
///
/// ## Errors
/// Throws `DecodingError`, the same case `JSONDecoder` throws for the same payload and type:
/// - `dataCorrupted`: not JSON (coding path empty), or a decoded value is malformed or does not
///   fit the type (a bad escape, invalid UTF-8, `1.5` for an `Int`, a date that is not ISO 8601).
///   Here the coding path is the value's, where `JSONDecoder` often reports an empty path.
/// - `keyNotFound`, `typeMismatch`, `valueNotFound`: with the coding path, as `JSONDecoder`.
/// Errors thrown by the types' own `init(from:)` pass through unchanged.
///
/// Nesting deeper than 512 arrays and objects is `dataCorrupted`, as in `JSONDecoder`.
///
/// ## Memory
/// Each thread that decodes keeps its decoder's working memory (the payload's copy and its tape,
/// for payloads up to about 13 KB: at most 64 KiB) for its next decode.
public struct PayloadDecoder: Sendable {
    /// A decoder. It has no options: it always decodes as Kappa's `EventRegistry` configures `JSONDecoder`.
    public init() {}

    /// Decodes a `T` from the JSON `data`.
    ///
    /// - Throws: `DecodingError` as `JSONDecoder` (with `.iso8601` dates) throws it; see ``PayloadDecoder``.
    public func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let count = data.count
        guard count < Int(UInt32.max) else { return try Self.foundation.decode(T.self, from: data) }
        // The decoder's core holds the tape and a copy of the bytes (reading them through `Data` on
        // every access would cost more than copying); the thread's core from the last decode if it fits.
        var core = PayloadCoreCache.core(elements: PayloadDecoderCore.elements(forBytes: count))
        defer {
            // Unless the decoded type kept the decoder or a container of it.
            if isKnownUniquelyReferenced(&core) { PayloadCoreCache.keep(core) }
        }
        let tokenCapacity = core.prepare(byteCount: count)
        let copy = core.byteStorage
        data.withUnsafeBytes { UnsafeMutableRawBufferPointer(start: copy, count: count).copyMemory(from: $0) }
        var skip = 0
        if Self.startsWithUTF8ByteOrderMark(copy, count) {
            skip = 3
        } else if Self.mayNotBeUTF8(copy, count) {
            return try Self.foundation.decode(T.self, from: data)
        }
        do {
            core.take(
                try JSONTape.scan(copy + skip, count: count - skip, into: core.tokenStorage, capacity: tokenCapacity),
                bytesFrom: skip, count: count - skip)
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: [], debugDescription: "The given data was not valid JSON: \(error.message) at byte \(error.offset)."))
        }
        return try core.unwrap(T.self, at: 0, path: .root)
    }

    /// JSONDecoder as Kappa's `EventRegistry` configures it, for what is handed to it.
    static let foundation: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    static func startsWithUTF8ByteOrderMark(_ bytes: UnsafeRawPointer, _ count: Int) -> Bool {
        count >= 3 && bytes.load(as: UInt8.self) == 0xEF && bytes.load(fromByteOffset: 1, as: UInt8.self) == 0xBB
            && bytes.load(fromByteOffset: 2, as: UInt8.self) == 0xBF
    }

    /// Whether JSONDecoder might read `data` as UTF-16 or UTF-32: it decides by a byte order mark
    /// or zero bytes among the first four. (Handing more to JSONDecoder costs time, never correctness.)
    static func mayNotBeUTF8(_ bytes: UnsafeRawPointer, _ count: Int) -> Bool {
        guard count > 0 else { return false }
        let first = bytes.load(as: UInt8.self)
        if first == 0 || first == 0xFE || first == 0xFF { return true }
        for offset in 1..<min(count, 4) where bytes.load(fromByteOffset: offset, as: UInt8.self) == 0 { return true }
        return false
    }
}
