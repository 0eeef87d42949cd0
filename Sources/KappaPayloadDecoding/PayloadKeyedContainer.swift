import Foundation

/// A JSON object as a keyed container. Keys match as JSONDecoder matches them (as Swift `String`s,
/// so by canonical equivalence), and of repeated keys the first one counts, as in JSONDecoder.
///
/// Small objects whose keys are plain ASCII are searched in place, comparing bytes; others get
/// an index from key to value when the container is made (which also checks every key, as
/// JSONDecoder does).
///
/// It holds one reference, to the decoder's core, where its path and index (when it has them) are
/// kept: the container is copied on every `decode` call (by `KeyedDecodingContainer`'s box), and a
/// copy then costs one retain.
struct PayloadKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let core: PayloadDecoderCore
    let object: Int
    /// The container's entries in ``PayloadDecoderCore/containerPaths`` and
    /// ``PayloadDecoderCore/memberIndexes``; -1 for the root path and for no index.
    private let pathSlot: Int32
    private let indexSlot: Int32

    static var maximumMembersSearched: UInt32 { 16 }

    init(core: PayloadDecoderCore, object: Int, path: PayloadCodingPath) throws {
        self.core = core
        self.object = object
        self.pathSlot = core.slot(for: path)
        let token = core.tokens[object]
        guard token.count > Self.maximumMembersSearched || token.flags & JSONToken.simpleASCIIKeys == 0 else {
            indexSlot = -1
            return
        }
        var index: [String: Int] = [:]
        index.reserveCapacity(Int(token.count))
        var member = object + 1
        while member < Int(token.end) {
            let name: String
            do { name = try core.string(core.tokens[member]) } catch { throw error.decodingError(at: path) }
            if index[name] == nil { index[name] = member + 1 }
            member = core.next(after: member + 1)
        }
        indexSlot = Int32(truncatingIfNeeded: core.state.pointee.memberIndexes.count)
        core.state.pointee.memberIndexes.append(index)
    }

    var path: PayloadCodingPath { pathSlot < 0 ? .root : core.state.pointee.containerPaths[Int(pathSlot)] }

    var codingPath: [any CodingKey] { path.keys }

    var allKeys: [Key] {
        var seen = Set<String>()
        var keys: [Key] = []
        var member = object + 1
        while member < Int(core.tokens[object].end) {
            // Every key was checked when this container was made.
            if let name = try? core.string(core.tokens[member]),
                seen.insert(name).inserted, let key = Key(stringValue: name)
            {
                keys.append(key)
            }
            member = core.next(after: member + 1)
        }
        return keys
    }

    func contains(_ key: Key) -> Bool { valueIndex(key) != nil }

    func valueIndex(named name: String) -> Int? {
        indexSlot >= 0 ? core.state.pointee.memberIndexes[Int(indexSlot)][name] : core.member(of: object, named: name)
    }

    /// The token of the value at `key`, if the object has it.
    @inline(__always)
    func valueIndex(_ key: Key) -> Int? {
        if indexSlot >= 0 { return core.state.pointee.memberIndexes[Int(indexSlot)][key.stringValue] }
        return core.member(of: object, named: key.stringValue)
    }

    @inline(__always)
    func value(forKey key: Key) throws -> Int {
        guard let index = valueIndex(key) else {
            throw DecodingError.keyNotFound(
                key,
                DecodingError.Context(
                    codingPath: path.keys, debugDescription: "No value associated with key \(key) (\"\(key.stringValue)\")."))
        }
        return index
    }

    /// The token of the value at `key` unless it is missing or null.
    @inline(__always)
    func presentValue(forKey key: Key) -> Int? {
        guard let index = valueIndex(key), core.tokens[index].kind != .null else { return nil }
        return index
    }

    /// A failure to decode the value at `key`, as the `DecodingError` at its path.
    func failure(_ failure: ValueFailure, _ key: Key) -> DecodingError {
        failure.decodingError(at: path.appending(key))
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        core.tokens[try value(forKey: key)].kind == .null
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        let index = try value(forKey: key)
        do { return try core.decodeBool(at: index) } catch { throw failure(error, key) }
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        let index = try value(forKey: key)
        do { return try core.decodeString(at: index) } catch { throw failure(error, key) }
    }

    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try floatingPoint(type, key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try floatingPoint(type, key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(type, key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(type, key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(type, key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(type, key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(type, key) }
    func decode(_ type: Int128.Type, forKey key: Key) throws -> Int128 { try integer(type, key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(type, key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(type, key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(type, key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(type, key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(type, key) }
    func decode(_ type: UInt128.Type, forKey key: Key) throws -> UInt128 { try integer(type, key) }

    @inline(__always)
    func integer<T: FixedWidthInteger & Decodable>(_ type: T.Type, _ key: Key) throws -> T {
        let index = try value(forKey: key)
        do { return try core.decodeInteger(type, at: index) } catch { throw failure(error, key) }
    }

    @inline(__always)
    func floatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(_ type: T.Type, _ key: Key) throws -> T {
        let index = try value(forKey: key)
        do { return try core.decodeFloatingPoint(type, at: index) } catch { throw failure(error, key) }
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try unwrap(type, at: value(forKey: key), key)
    }

    @inline(__always)
    func unwrap<T: Decodable>(_ type: T.Type, at index: Int, _ key: Key) throws -> T {
        do {
            if let value = try core.shortcut(type, at: index) { return value }
        } catch {
            throw failure(error, key)
        }
        return try core.decodeNested(type, at: index, path: path.appending(key))
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        guard let index = presentValue(forKey: key) else { return nil }
        do { return try core.decodeBool(at: index) } catch { throw failure(error, key) }
    }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        guard let index = presentValue(forKey: key) else { return nil }
        do { return try core.decodeString(at: index) } catch { throw failure(error, key) }
    }

    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try floatingPointIfPresent(type, key) }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try floatingPointIfPresent(type, key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try integerIfPresent(type, key) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try integerIfPresent(type, key) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try integerIfPresent(type, key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try integerIfPresent(type, key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try integerIfPresent(type, key) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try integerIfPresent(type, key) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try integerIfPresent(type, key) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try integerIfPresent(type, key) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try integerIfPresent(type, key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try integerIfPresent(type, key) }

    @inline(__always)
    func integerIfPresent<T: FixedWidthInteger & Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        guard let index = presentValue(forKey: key) else { return nil }
        do { return try core.decodeInteger(type, at: index) } catch { throw failure(error, key) }
    }

    @inline(__always)
    func floatingPointIfPresent<T: BinaryFloatingPoint & LosslessStringConvertible>(_ type: T.Type, _ key: Key) throws -> T? {
        guard let index = presentValue(forKey: key) else { return nil }
        do { return try core.decodeFloatingPoint(type, at: index) } catch { throw failure(error, key) }
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let index = presentValue(forKey: key) else { return nil }
        return try unwrap(type, at: index, key)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try KeyedDecodingContainer(core.keyedContainer(keyedBy: type, at: value(forKey: key), path.appending(key)))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try core.unkeyedContainer(at: value(forKey: key), path.appending(key))
    }

    /// As JSONDecoder: a missing key gives a decoder of `null`, not an error.
    func superDecoder() throws -> any Decoder {
        core.decoder(at: valueIndex(named: "super") ?? core.nullToken, path.appending(PayloadSuperKey()))
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        core.decoder(at: valueIndex(key) ?? core.nullToken, path.appending(key))
    }
}

extension PayloadDecoderCore {
    /// The value token of the first member of `object` named `name`, in a small object with
    /// simple ASCII keys.
    func member(of object: Int, named name: String) -> Int? {
        let found =
            name.utf8.withContiguousStorageIfAvailable { name -> Int in
                let count = name.count
                guard count > 0, let nameBase = name.baseAddress, let base = bytes.baseAddress else { return Self.compareAsStrings }
                let first = nameBase[0]
                var member = object + 1
                let end = Int(tokens[object].end)
                while member < end {
                    let key = tokens[member]
                    let start = Int(key.start)
                    // Equal bytes are equal strings, and (the keys being ASCII) no other key can equal.
                    if Int(key.end &- key.start) == count, base.load(fromByteOffset: start, as: UInt8.self) == first,
                        memcmp(base + start, nameBase, count) == 0
                    {
                        return member + 1
                    }
                    let value = tokens[member + 1]
                    member = value.isContainer ? Int(value.end) : member + 2
                }
                // A non-ASCII name may still equal an ASCII key as a string (U+212A KELVIN SIGN == "K").
                var high: UInt8 = 0
                for index in 0..<count { high |= nameBase[index] }
                return high < 0x80 ? Self.absent : Self.compareAsStrings
            } ?? Self.compareAsStrings
        switch found {
        case Self.absent: return nil
        case Self.compareAsStrings: return member(of: object, equalTo: name)
        default: return found
        }
    }

    private static var absent: Int { -1 }
    private static var compareAsStrings: Int { -2 }

    /// `member(of:named:)` comparing as strings.
    func member(of object: Int, equalTo name: String) -> Int? {
        var member = object + 1
        while member < Int(tokens[object].end) {
            if text(of: tokens[member]) == name { return member + 1 }
            member = next(after: member + 1)
        }
        return nil
    }

}
