import Foundation

/// A JSON array as an unkeyed container, with JSONDecoder's behaviour: a failed decode does not
/// advance, and `decodeIfPresent` at the end returns nil and still counts up `currentIndex`.
struct PayloadUnkeyedContainer: UnkeyedDecodingContainer {
    let core: PayloadDecoderCore
    let path: PayloadCodingPath
    let count: Int?
    private(set) var currentIndex = 0
    /// The token of the next element; `end` when there is none.
    private var cursor: Int
    private let end: Int

    init(core: PayloadDecoderCore, array: Int, path: PayloadCodingPath) {
        let token = core.tokens[array]
        self.core = core
        self.path = path
        self.count = Int(token.count)
        self.cursor = array + 1
        self.end = Int(token.end)
    }

    var codingPath: [any CodingKey] { path.keys }

    var isAtEnd: Bool { currentIndex >= count ?? 0 }

    /// The path of the next element.
    private var elementPath: PayloadCodingPath { .index(currentIndex, path) }

    /// The next element's token, or an error at the end.
    @inline(__always)
    private func next(_ type: Any.Type, _ message: String = "Unkeyed container is at end.") throws -> Int {
        guard cursor < end else {
            throw DecodingError.valueNotFound(
                type, DecodingError.Context(codingPath: PayloadCodingPath.index(currentIndex, path).keys, debugDescription: message))
        }
        return cursor
    }

    /// The next element's token unless there is none or it is null.
    @inline(__always)
    private func presentNext() -> Int? {
        guard cursor < end, core.tokens[cursor].kind != .null else { return nil }
        return cursor
    }

    @inline(__always)
    private mutating func advance() {
        if cursor < end { cursor = core.next(after: cursor) }
        currentIndex += 1
    }

    /// A failure to decode the next element, as the `DecodingError` at its path.
    private func failure(_ failure: ValueFailure) -> DecodingError {
        failure.decodingError(at: elementPath)
    }

    mutating func decodeNil() throws -> Bool {
        guard core.tokens[try next(Never.self)].kind == .null else { return false }
        advance()
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool {
        let index = try next(type)
        let value: Bool
        do { value = try core.decodeBool(at: index) } catch { throw failure(error) }
        advance()
        return value
    }

    mutating func decode(_ type: String.Type) throws -> String {
        let index = try next(type)
        let value: String
        do { value = try core.decodeString(at: index) } catch { throw failure(error) }
        advance()
        return value
    }

    mutating func decode(_ type: Double.Type) throws -> Double { try floatingPoint(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try floatingPoint(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    mutating func decode(_ type: Int128.Type) throws -> Int128 { try integer(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }
    mutating func decode(_ type: UInt128.Type) throws -> UInt128 { try integer(type) }

    private mutating func integer<T: FixedWidthInteger & Decodable>(_ type: T.Type) throws -> T {
        let index = try next(type)
        let value: T
        do { value = try core.decodeInteger(type, at: index) } catch { throw failure(error) }
        advance()
        return value
    }

    private mutating func floatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(_ type: T.Type) throws -> T {
        let index = try next(type)
        let value: T
        do { value = try core.decodeFloatingPoint(type, at: index) } catch { throw failure(error) }
        advance()
        return value
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let value = try unwrap(type, at: next(type))
        advance()
        return value
    }

    private func unwrap<T: Decodable>(_ type: T.Type, at index: Int) throws -> T {
        do {
            if let value = try core.shortcut(type, at: index) { return value }
        } catch {
            throw failure(error)
        }
        return try core.decodeNested(type, at: index, path: elementPath)
    }

    mutating func decodeIfPresent(_ type: Bool.Type) throws -> Bool? {
        var value: Bool?
        if let index = presentNext() { do { value = try core.decodeBool(at: index) } catch { throw failure(error) } }
        advance()
        return value
    }

    mutating func decodeIfPresent(_ type: String.Type) throws -> String? {
        var value: String?
        if let index = presentNext() { do { value = try core.decodeString(at: index) } catch { throw failure(error) } }
        advance()
        return value
    }

    mutating func decodeIfPresent(_ type: Double.Type) throws -> Double? { try floatingPointIfPresent(type) }
    mutating func decodeIfPresent(_ type: Float.Type) throws -> Float? { try floatingPointIfPresent(type) }
    mutating func decodeIfPresent(_ type: Int.Type) throws -> Int? { try integerIfPresent(type) }
    mutating func decodeIfPresent(_ type: Int8.Type) throws -> Int8? { try integerIfPresent(type) }
    mutating func decodeIfPresent(_ type: Int16.Type) throws -> Int16? { try integerIfPresent(type) }
    mutating func decodeIfPresent(_ type: Int32.Type) throws -> Int32? { try integerIfPresent(type) }
    mutating func decodeIfPresent(_ type: Int64.Type) throws -> Int64? { try integerIfPresent(type) }
    mutating func decodeIfPresent(_ type: UInt.Type) throws -> UInt? { try integerIfPresent(type) }
    mutating func decodeIfPresent(_ type: UInt8.Type) throws -> UInt8? { try integerIfPresent(type) }
    mutating func decodeIfPresent(_ type: UInt16.Type) throws -> UInt16? { try integerIfPresent(type) }
    mutating func decodeIfPresent(_ type: UInt32.Type) throws -> UInt32? { try integerIfPresent(type) }
    mutating func decodeIfPresent(_ type: UInt64.Type) throws -> UInt64? { try integerIfPresent(type) }

    private mutating func integerIfPresent<T: FixedWidthInteger & Decodable>(_ type: T.Type) throws -> T? {
        var value: T?
        if let index = presentNext() { do { value = try core.decodeInteger(type, at: index) } catch { throw failure(error) } }
        advance()
        return value
    }

    private mutating func floatingPointIfPresent<T: BinaryFloatingPoint & LosslessStringConvertible>(_ type: T.Type) throws -> T? {
        var value: T?
        if let index = presentNext() { do { value = try core.decodeFloatingPoint(type, at: index) } catch { throw failure(error) } }
        advance()
        return value
    }

    mutating func decodeIfPresent<T: Decodable>(_ type: T.Type) throws -> T? {
        var value: T?
        if let index = presentNext() { value = try unwrap(type, at: index) }
        advance()
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let element = try next(KeyedDecodingContainer<NestedKey>.self)
        let container = try core.keyedContainer(keyedBy: type, at: element, elementPath)
        advance()
        return KeyedDecodingContainer(container)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let element = try next((any UnkeyedDecodingContainer).self, "Cannot get nested unkeyed container -- unkeyed container is at end.")
        let container = try core.unkeyedContainer(at: element, elementPath)
        advance()
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        let element = try next((any Decoder).self, "Cannot get superDecoder() -- unkeyed container is at end.")
        let decoder = core.decoder(at: element, elementPath)
        advance()
        return decoder
    }
}
