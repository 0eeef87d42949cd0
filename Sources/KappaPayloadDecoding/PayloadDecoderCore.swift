import Foundation

/// The `Decoder` of ``PayloadDecoder``: walks the tape of the payload.
///
/// As JSONDecoder's implementation does, one instance serves a whole payload: decoding a nested
/// value moves ``current`` and ``path`` to it for the duration of its `init(from:)`. Containers keep
/// their own token index and path. Strings and numbers are decoded from their bytes only when asked
/// for, so (as with JSONDecoder) a malformed value that is never decoded is no error.
///
/// The tape and a copy of the payload's bytes are allocated with the core, after its state (one
/// allocation instead of three).
final class PayloadDecoderCore: ManagedBuffer<PayloadDecoderState, JSONToken> {
    /// A core with room for `elements` tokens, or bytes 16 to a token (see ``prepare(byteCount:)``).
    static func make(elements: Int) -> PayloadDecoderCore {
        let buffer = create(minimumCapacity: elements) { _ in PayloadDecoderState(elements: elements) }
        return unsafeDowncast(buffer, to: PayloadDecoderCore.self)
    }

    /// The elements needed for a payload of `byteCount` bytes: its bytes, and the tape as the scan
    /// expects it (it allocates more if it needs more).
    static func elements(forBytes byteCount: Int) -> Int {
        (byteCount + MemoryLayout<JSONToken>.stride - 1) / MemoryLayout<JSONToken>.stride + byteCount / 4 + 8
    }

    /// Makes room for a payload of `byteCount` bytes (at least ``elements(forBytes:)`` must fit);
    /// returns the room for the tape. The bytes go last, ending where the core's memory ends, so
    /// that a read past them is a read past the allocation, which AddressSanitizer reports.
    func prepare(byteCount: Int) -> Int {
        state.pointee.bytesOffset = state.pointee.elements * MemoryLayout<JSONToken>.stride - byteCount
        state.pointee.byteCount = byteCount
        return state.pointee.bytesOffset / MemoryLayout<JSONToken>.stride
    }

    /// Forgets the last payload, for ``PayloadCoreCache`` to give the core to the next.
    func clear() {
        if state.pointee.owner == nil { state.pointee.otherTokens?.deallocate() }
        state.pointee.otherTokens = nil
        state.pointee.tokenCount = 0
        state.pointee.current = 0
        state.pointee.path = .root
        if !state.pointee.containerPaths.isEmpty { state.pointee.containerPaths.removeAll(keepingCapacity: true) }
        if !state.pointee.memberIndexes.isEmpty { state.pointee.memberIndexes.removeAll(keepingCapacity: true) }
    }

    /// A separate decoder for the value at `index` (a super decoder), sharing `core`'s payload.
    static func sharing(_ core: PayloadDecoderCore, at index: Int, path: PayloadCodingPath) -> PayloadDecoderCore {
        let buffer = create(minimumCapacity: 0) { _ in
            var state = PayloadDecoderState(elements: 0)
            state.byteCount = core.state.pointee.byteCount
            state.sharedBytes = core.bytes.baseAddress
            state.otherTokens = core.tokens
            state.tokenCount = core.state.pointee.tokenCount
            state.owner = core.state.pointee.owner ?? core
            state.current = index
            state.path = path
            return state
        }
        return unsafeDowncast(buffer, to: PayloadDecoderCore.self)
    }

    /// The core's state (through a pointer: accessing `header` would check exclusivity dynamically).
    @inline(__always)
    var state: UnsafeMutablePointer<PayloadDecoderState> { withUnsafeMutablePointerToHeader { $0 } }

    deinit {
        if state.pointee.owner == nil { state.pointee.otherTokens?.deallocate() }
    }

    /// Where the payload's bytes are copied to.
    var byteStorage: UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(withUnsafeMutablePointerToElements { $0 }) + state.pointee.bytesOffset
    }

    /// Where the tape is written to, with room for as many tokens as `prepare` said.
    var tokenStorage: UnsafeMutablePointer<JSONToken> { withUnsafeMutablePointerToElements { $0 } }

    /// Takes the tape written to ``tokenStorage`` (or, if it outgrew that, allocated by the scan).
    func take(_ tape: consuming JSONTape, bytesFrom start: Int, count: Int) {
        state.pointee.bytesOffset += start
        state.pointee.byteCount = count
        state.pointee.tokenCount = tape.count
        if tape.allocatedTokens { state.pointee.otherTokens = tape.tokens }
    }

    /// The payload's bytes (without a byte order mark).
    @inline(__always)
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: state.pointee.sharedBytes ?? UnsafeRawPointer(byteStorage), count: state.pointee.byteCount)
    }

    /// The tape: the document's tokens, then one `null` token (``nullToken``).
    @inline(__always)
    var tokens: UnsafeMutablePointer<JSONToken> { state.pointee.otherTokens ?? tokenStorage }

    var tokenCount: Int { state.pointee.tokenCount }

    /// The token this decoder stands for.
    @inline(__always)
    var current: Int {
        get { state.pointee.current }
        set { state.pointee.current = newValue }
    }

    var path: PayloadCodingPath {
        get { state.pointee.path }
        set { state.pointee.path = newValue }
    }

    var nullToken: Int { state.pointee.tokenCount - 1 }

    /// Where a keyed container keeps `path`: -1 for the root, else its entry in ``containerPaths``.
    func slot(for path: PayloadCodingPath) -> Int32 {
        if case .root = path { return -1 }
        state.pointee.containerPaths.append(path)
        return Int32(truncatingIfNeeded: state.pointee.containerPaths.count - 1)
    }

    /// The token after the value at `index` (and after all of its contents).
    @inline(__always)
    func next(after index: Int) -> Int {
        let token = tokens[index]
        return token.isContainer ? Int(token.end) : index + 1
    }

    @inline(__always)
    func raw(_ token: JSONToken) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[Int(token.start)..<Int(token.end)])
    }

    func text(of token: JSONToken) -> String {
        String(decoding: raw(token), as: UTF8.self)
    }

    /// JSONDecoder's words for a value's kind in its errors.
    func describe(_ index: Int) -> String {
        switch tokens[index].kind {
        case .string: "a string"
        case .number: "number"
        case .true, .false: "bool"
        case .null: "null"
        case .object: "a dictionary"
        case .array: "an array"
        }
    }

    /// A value of the wrong kind: `valueNotFound` for null, else `typeMismatch`.
    func wrongKind(_ type: Any.Type, at index: Int) -> ValueFailure {
        tokens[index].kind == .null ? .valueNotFound(type) : .typeMismatch(type, found: describe(index))
    }

    // MARK: Scalars

    @inline(__always)
    func decodeBool(at index: Int) throws(ValueFailure) -> Bool {
        switch tokens[index].kind {
        case .true: return true
        case .false: return false
        // As JSONDecoder: null is a type mismatch for Bool, not a missing value.
        default: throw .typeMismatch(Bool.self, found: describe(index))
        }
    }

    @inline(__always)
    func decodeString(at index: Int) throws(ValueFailure) -> String {
        let token = tokens[index]
        guard token.kind == .string else { throw wrongKind(String.self, at: index) }
        if token.isSimpleASCII {
            let raw = raw(token)
            return String(unsafeUninitializedCapacity: raw.count) { buffer in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
                return raw.count
            }
        }
        return try string(token)
    }

    /// A string token's value (escapes, validation).
    func string(_ token: JSONToken) throws(ValueFailure) -> String {
        do {
            return try JSONScalars.string(raw(token), flags: token.flags)
        } catch {
            throw .corrupted("The given data was not valid JSON: \(error.message).")
        }
    }

    @inline(__always)
    func decodeInteger<T: FixedWidthInteger & Decodable>(_ type: T.Type, at index: Int) throws(ValueFailure) -> T {
        let token = tokens[index]
        guard token.kind == .number else { throw wrongKind(T.self, at: index) }
        switch JSONScalars.plainInteger(raw(token), as: T.self) {
        case .value(let value): return value
        case .invalid: throw .corrupted("The given data was not valid JSON: invalid number \(text(of: token)).")
        case .notPlain: return try unusualInteger(T.self, token)
        }
    }

    /// A valid number that is not a plain in-range integer, converted as JSONDecoder does: through
    /// `Double` (so `1.0`, `1e2` and `1e-400` are integers, `1.5` and out-of-range values are errors),
    /// and for magnitudes from 2^53 on through `Decimal`, for which JSONDecoder itself is asked.
    func unusualInteger<T: FixedWidthInteger & Decodable>(_ type: T.Type, _ token: JSONToken) throws(ValueFailure) -> T {
        let text = text(of: token)
        guard let double = Double(text), let value = T(exactly: double) else {
            throw .corrupted("The given data was not valid JSON: number \(text) does not fit in \(T.self).")
        }
        if double.magnitude < 9_007_199_254_740_992 { return value }
        do {
            return try PayloadDecoder.foundation.decode(T.self, from: Data(text.utf8))
        } catch {
            throw .corrupted("The given data was not valid JSON: number \(text) does not fit in \(T.self).")
        }
    }

    @inline(__always)
    func decodeFloatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(_ type: T.Type, at index: Int) throws(ValueFailure) -> T {
        let token = tokens[index]
        guard token.kind == .number else { throw wrongKind(T.self, at: index) }
        let raw = raw(token)
        guard JSONScalars.isValidNumber(raw), let value = JSONScalars.floatingPoint(raw, as: T.self),
            // As JSONDecoder: overflow to infinity and underflow to zero are errors.
            value.isFinite, value != 0 || JSONScalars.isTrueZero(raw)
        else {
            throw .corrupted("The given data was not valid JSON: number \(text(of: token)) is not a valid \(T.self).")
        }
        return value
    }

    // MARK: Any Decodable

    /// The value at `index` if `T` is a type decoded here directly: those JSONDecoder treats
    /// specially (Date, Data, URL, Decimal) and, as shortcuts with the results of their
    /// `init(from:)`, the common scalars. Nil for other types.
    @inline(__always)
    func shortcut<T: Decodable>(_ type: T.Type, at index: Int) throws(ValueFailure) -> T? {
        if T.self == String.self { return try decodeString(at: index) as? T }
        if T.self == Int.self { return try decodeInteger(Int.self, at: index) as? T }
        if T.self == Bool.self { return try decodeBool(at: index) as? T }
        if T.self == Double.self { return try decodeFloatingPoint(Double.self, at: index) as? T }
        if T.self == Int64.self { return try decodeInteger(Int64.self, at: index) as? T }
        if T.self == Date.self { return try decodeDate(at: index) as? T }
        if T.self == Data.self { return try decodeData(at: index) as? T }
        if T.self == URL.self { return try decodeURL(at: index) as? T }
        if T.self == Decimal.self { return try decodeDecimal(at: index) as? T }
        return nil
    }

    /// Decodes the value at `index` (whose path is `path`) as JSONDecoder's `unwrap` does.
    func unwrap<T: Decodable>(_ type: T.Type, at index: Int, path: PayloadCodingPath) throws -> T {
        do {
            if let value = try shortcut(type, at: index) { return value }
        } catch {
            throw error.decodingError(at: path)
        }
        return try decodeNested(type, at: index, path: path)
    }

    /// `T` by its own `init(from:)`, with this decoder moved to the value at `index` meanwhile.
    func decodeNested<T: Decodable>(_ type: T.Type, at index: Int, path: PayloadCodingPath) throws -> T {
        // The top-level value: this decoder is already there.
        if index == current, case .root = path, case .root = self.path { return try T(from: self) }
        let saved = (current, self.path)
        current = index
        self.path = path
        defer { (current, self.path) = saved }
        return try T(from: self)
    }
}
