/// The state of a ``PayloadDecoderCore``.
struct PayloadDecoderState {
    /// The room after the state, in tokens.
    let elements: Int
    /// Where the payload's bytes are, from the start of the core's elements, and how many.
    var bytesOffset = 0
    var byteCount = 0
    /// A super decoder's: the bytes of the core it shares.
    var sharedBytes: UnsafeRawPointer?
    /// The tape when it is not in the core's elements: allocated by the scan (owned), or a
    /// super decoder's (its owner's).
    var otherTokens: UnsafeMutablePointer<JSONToken>?
    var tokenCount = 0
    /// The core a super decoder's core shares, kept alive by it; nil for that core itself.
    var owner: PayloadDecoderCore?
    var current = 0
    var path = PayloadCodingPath.root
    /// The paths and member indexes of keyed containers (see ``PayloadKeyedContainer``).
    var containerPaths: [PayloadCodingPath] = []
    var memberIndexes: [[String: Int]] = []

    init(elements: Int) {
        self.elements = elements
    }
}
