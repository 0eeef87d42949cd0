import Crypto
import Foundation

/// The log's chain hash (Migrations/log/0006_hash_chain.sql), computed here on its own, never by the
/// server's function: SHA-256 over
///
/// | field | bytes |
/// |---|---|
/// | stream version | 8, big-endian |
/// | previous hash | 32: the hash of version N-1 of the stream; absent for version 1 |
/// | event id | 16, the UUID's bytes in order |
/// | schema version | 4, big-endian |
/// | recorded at | 8, big-endian: microseconds since 2000-01-01 00:00:00 UTC |
/// | stream id, event type, payload, metadata | each: its UTF-8 byte count (4, big-endian), then the bytes |
///
/// Payload and metadata are the `json` texts as stored, byte for byte (metadata `{}` when empty).
enum ChainHash {
    /// The hash of `event` following `previous` (`nil` for a stream's first version).
    static func hash(of event: ChainedEvent, previous: [UInt8]?) -> [UInt8] {
        var hasher = SHA256()
        appendInteger(event.version, to: &hasher)
        if let previous { hasher.update(data: previous) }
        withUnsafeBytes(of: event.eventID.uuid) { hasher.update(bufferPointer: $0) }
        appendInteger(event.schemaVersion, to: &hasher)
        appendInteger(event.recordedAtMicroseconds, to: &hasher)
        appendText(Array(event.stream.utf8), to: &hasher)
        appendText(Array(event.eventType.utf8), to: &hasher)
        appendText(event.payload, to: &hasher)
        appendText(event.metadata, to: &hasher)
        return Array(hasher.finalize())
    }

    private static func appendInteger<I: FixedWidthInteger>(_ value: I, to hasher: inout SHA256) {
        withUnsafeBytes(of: value.bigEndian) { hasher.update(bufferPointer: $0) }
    }

    private static func appendText(_ bytes: [UInt8], to hasher: inout SHA256) {
        appendInteger(Int32(truncatingIfNeeded: bytes.count), to: &hasher)
        hasher.update(data: bytes)
    }
}
