import Foundation

extension PayloadDecoderCore: Decoder {
    var codingPath: [any CodingKey] { path.keys }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        try KeyedDecodingContainer(keyedContainer(keyedBy: type, at: current, path))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try unkeyedContainer(at: current, path)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        self
    }

    /// The keyed container of the object at `index`, whose path is `path`.
    func keyedContainer<Key: CodingKey>(keyedBy type: Key.Type, at index: Int, _ path: PayloadCodingPath) throws -> PayloadKeyedContainer<Key> {
        switch tokens[index].kind {
        case .object:
            return try PayloadKeyedContainer(core: self, object: index, path: path)
        case .null:
            throw DecodingError.valueNotFound(
                [String: Any].self,
                DecodingError.Context(
                    codingPath: path.keys, debugDescription: "Cannot get keyed decoding container -- found null value instead"))
        default:
            throw DecodingError.typeMismatch(
                [String: Any].self,
                DecodingError.Context(
                    codingPath: path.keys, debugDescription: "Expected to decode \([String: Any].self) but found \(describe(index)) instead."))
        }
    }

    /// The unkeyed container of the array at `index`, whose path is `path`.
    func unkeyedContainer(at index: Int, _ path: PayloadCodingPath) throws -> PayloadUnkeyedContainer {
        switch tokens[index].kind {
        case .array:
            return PayloadUnkeyedContainer(core: self, array: index, path: path)
        case .null:
            throw DecodingError.valueNotFound(
                [Any].self,
                DecodingError.Context(
                    codingPath: path.keys, debugDescription: "Cannot get unkeyed decoding container -- found null value instead"))
        default:
            throw DecodingError.typeMismatch(
                [Any].self,
                DecodingError.Context(
                    codingPath: path.keys, debugDescription: "Expected to decode \([Any].self) but found \(describe(index)) instead."))
        }
    }

    /// A separate decoder for the value at `index` (a super decoder), sharing the payload.
    func decoder(at index: Int, _ path: PayloadCodingPath) -> PayloadDecoderCore {
        PayloadDecoderCore.sharing(self, at: index, path: path)
    }
}

extension PayloadDecoderCore: SingleValueDecodingContainer {

    func decodeNil() -> Bool { tokens[current].kind == .null }
    func decode(_ type: Bool.Type) throws -> Bool {
        do { return try decodeBool(at: current) } catch { throw error.decodingError(at: path) }
    }

    func decode(_ type: String.Type) throws -> String {
        do { return try decodeString(at: current) } catch { throw error.decodingError(at: path) }
    }

    func decode(_ type: Double.Type) throws -> Double { try floatingPoint(type) }
    func decode(_ type: Float.Type) throws -> Float { try floatingPoint(type) }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: Int128.Type) throws -> Int128 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }
    func decode(_ type: UInt128.Type) throws -> UInt128 { try integer(type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try unwrap(type, at: current, path: path) }

    private func integer<T: FixedWidthInteger & Decodable>(_ type: T.Type) throws -> T {
        do { return try decodeInteger(type, at: current) } catch { throw error.decodingError(at: path) }
    }

    private func floatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(_ type: T.Type) throws -> T {
        do { return try decodeFloatingPoint(type, at: current) } catch { throw error.decodingError(at: path) }
    }
}
