import Foundation

/// A statement's parameters for libpq, each in PostgreSQL's binary form or NULL, laid out in one
/// buffer when sent.
package struct LibPQParameters: Sendable {
    private var values: [[UInt8]?] = []

    package init(capacity: Int = 0) { values.reserveCapacity(capacity) }

    package var count: Int { values.count }

    /// A `text`, binary: its bytes and their length (a text parameter would end at a NUL byte, which
    /// the server must refuse instead).
    package mutating func append(_ text: String) { values.append(Array(text.utf8)) }

    package mutating func append(_ text: String?) {
        if let text { append(text) } else { values.append(nil) }
    }

    /// An `int8`, binary, or NULL.
    package mutating func append(_ value: Int64?) {
        if let value { values.append(Self.bytes(value.bigEndian)) } else { values.append(nil) }
    }

    /// An `int4`, binary.
    package mutating func append(_ value: Int32) { values.append(Self.bytes(value.bigEndian)) }

    /// A `uuid`, binary.
    package mutating func append(_ id: UUID) { values.append(Self.bytes(id.uuid)) }

    /// A `timestamptz`, binary: microseconds since 2000-01-01, truncated as postgres-nio truncates
    /// them, so the same instant is stored whichever driver sent it.
    package mutating func append(_ date: Date) {
        let microseconds = Int64(date.timeIntervalSince(Self.postgresEpoch) * 1_000_000)
        values.append(Self.bytes(microseconds.bigEndian))
    }

    private static let postgresEpoch = Date(timeIntervalSince1970: 946_684_800)

    /// A `text[]`, binary.
    package mutating func append(texts: [String]) { appendArray(texts.map { Array($0.utf8) }, of: 25) }

    /// A `uuid[]`, binary.
    package mutating func append(ids: [UUID]) {
        appendArray(ids.map { Self.bytes($0.uuid) }, of: 2950)
    }

    /// An `int4[]`, binary.
    package mutating func append(integers: [Int32]) { appendArray(integers.map { Self.bytes($0.bigEndian) }, of: 23) }

    /// An `int8[]`, binary.
    package mutating func append(integers: [Int64]) { appendArray(integers.map { Self.bytes($0.bigEndian) }, of: 20) }

    /// A `timestamptz[]`, binary, each instant truncated as ``append(_:)-(Date)`` truncates it.
    package mutating func append(dates: [Date]) {
        appendArray(dates.map { Self.bytes(Int64($0.timeIntervalSince(Self.postgresEpoch) * 1_000_000).bigEndian) }, of: 1184)
    }

    private static func bytes<T>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    /// A one-dimensional array without NULLs in PostgreSQL's binary form: dimensions, flags, the
    /// element type, the length and lower bound (1), then each element's length and bytes.
    private mutating func appendArray(_ elements: [[UInt8]], of type: UInt32) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20 + elements.reduce(0) { $0 + 4 + $1.count })
        bytes += Self.bytes(Int32(elements.isEmpty ? 0 : 1).bigEndian)
        bytes += Self.bytes(Int32(0).bigEndian)
        bytes += Self.bytes(type.bigEndian)
        if !elements.isEmpty {
            bytes += Self.bytes(Int32(elements.count).bigEndian)
            bytes += Self.bytes(Int32(1).bigEndian)
        }
        for element in elements {
            bytes += Self.bytes(Int32(element.count).bigEndian)
            bytes += element
        }
        values.append(bytes)
    }

    /// Calls `body` with libpq's parameter arrays: count, values, lengths, formats.
    package func withUnsafeArrays<R>(
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<Int32>, UnsafePointer<Int32>) throws -> R
    ) rethrows -> R {
        let total = values.reduce(0) { $0 + ($1?.count ?? 0) }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 1)
        let pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(values.count, 1))
        let integers = UnsafeMutablePointer<Int32>.allocate(capacity: max(values.count * 2, 1))
        defer {
            storage.deallocate()
            pointers.deallocate()
            integers.deallocate()
        }
        var offset = 0
        for (index, value) in values.enumerated() {
            guard let value else {
                pointers[index] = nil
                integers[index] = 0
                integers[values.count + index] = 0
                continue
            }
            let start = storage + offset
            value.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress { start.copyMemory(from: base, byteCount: bytes.count) }
            }
            pointers[index] = UnsafePointer(start.assumingMemoryBound(to: CChar.self))
            integers[index] = Int32(value.count)
            integers[values.count + index] = 1
            offset += value.count
        }
        return try body(Int32(values.count), pointers, integers, integers + values.count)
    }
}
