import Foundation

/// A statement's parameters for libpq, each text, binary or NULL, laid out in one buffer when sent.
package struct LibPQParameters: Sendable {
    private var values: [(bytes: [UInt8], binary: Bool)?] = []

    package init(capacity: Int = 0) { values.reserveCapacity(capacity) }

    package var count: Int { values.count }

    package mutating func append(_ text: String) { values.append((Array(text.utf8), false)) }

    package mutating func append(_ text: String?) {
        if let text { append(text) } else { values.append(nil) }
    }

    package mutating func append(_ value: Int64?) { append(value.map { String($0) }) }

    package mutating func append(_ value: Int32) { append(String(value)) }

    /// A `uuid`, as text.
    package mutating func append(_ id: UUID) { append(id.uuidString) }

    /// A `timestamptz`, binary: microseconds since 2000-01-01, truncated as postgres-nio truncates
    /// them, so the same instant is stored whichever driver sent it.
    package mutating func append(_ date: Date) {
        let microseconds = Int64(date.timeIntervalSince(Self.postgresEpoch) * 1_000_000)
        values.append((withUnsafeBytes(of: microseconds.bigEndian) { Array($0) }, true))
    }

    private static let postgresEpoch = Date(timeIntervalSince1970: 946_684_800)

    /// Calls `body` with libpq's parameter arrays: count, values, lengths, formats.
    package func withUnsafeArrays<R>(
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<Int32>, UnsafePointer<Int32>) throws -> R
    ) rethrows -> R {
        let total = values.reduce(0) { $0 + ($1.map { $0.bytes.count + 1 } ?? 0) }
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
            value.bytes.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress { start.copyMemory(from: base, byteCount: bytes.count) }
            }
            start.storeBytes(of: 0, toByteOffset: value.bytes.count, as: UInt8.self)
            pointers[index] = UnsafePointer(start.assumingMemoryBound(to: CChar.self))
            integers[index] = Int32(value.bytes.count)
            integers[values.count + index] = value.binary ? 1 : 0
            offset += value.bytes.count + 1
        }
        return try body(Int32(values.count), pointers, integers, integers + values.count)
    }
}
