/// Scans a JSON document once into a flat array of ``JSONToken``s (the tape).
///
/// The scan checks the structure exactly as Foundation's `JSONDecoder` (swift-foundation's
/// `JSONScanner`) does: the same whitespace, literals, nesting limit (512), trailing commas accepted
/// in arrays and objects, and the same leniency: the characters of strings (escapes, control
/// characters, UTF-8) and of numbers (any run of `0-9 . + - e E` here) are checked only when a value
/// is decoded, so a malformed value that is never decoded is no error — as with `JSONDecoder`.
struct JSONTape: ~Copyable {
    static let maximumDepth = 512

    /// The document's tokens, then one extra `null` token (see ``PayloadDecoderCore/nullToken``):
    /// in the memory given to ``scan(_:count:into:capacity:)``, or if that was too small, in memory
    /// allocated here, which whoever takes the tape deallocates.
    let tokens: UnsafeMutablePointer<JSONToken>
    let count: Int
    let allocatedTokens: Bool

    /// A malformed document, with the byte offset of the problem.
    struct SyntaxError: Error {
        var offset: Int
        var message: String
    }

    /// Scans the `count` bytes at `base` (UTF-8, without a byte order mark), writing the tokens to
    /// `storage` (room for `capacity`, at least 1) as far as they fit.
    static func scan(
        _ base: UnsafeRawPointer, count: Int, into storage: UnsafeMutablePointer<JSONToken>,
        capacity: Int
    ) throws(SyntaxError) -> JSONTape {
        var scanner = JSONScanner(base: base, length: count, tokens: storage, capacity: capacity)
        do {
            try scanner.scanDocument()
        } catch {
            if scanner.allocated { scanner.tokens.deallocate() }
            throw error
        }
        scanner.append(JSONToken(kind: .null, flags: 0, start: 0, end: 0, count: 0))
        return JSONTape(tokens: scanner.tokens, count: scanner.count, allocatedTokens: scanner.allocated)
    }
}
