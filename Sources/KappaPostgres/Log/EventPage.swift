import Foundation
import Kappa
import NIOCore

/// A page of the log sent as one `bytea` cell: the server packs each event into a frame and
/// concatenates the frames (`string_agg`), so a page of thousands of events is one row for the client.
///
/// A frame: the 52-byte envelope of ``EventCells`` (fixed width), then four variable parts, each
/// ended by a zero byte — stream id, type name (text), payload (the JSON text as stored) and
/// metadata (the same, or nothing when it is `{}`). None of them can hold a zero byte: PostgreSQL's
/// text cannot, and JSON text escapes control characters.
///
/// Why: reading events row by row cost the client about 2.2 µs an event (a `DataRow` message, a
/// `PostgresRow` and its cells each), more than half of a bulk rebuild's client time; a page costs
/// it a scan for four zero bytes an event. The server's packing costs it ~0.4 µs an event more.
/// A page larger than `bytea` can hold (1 GB) fails with SQLSTATE 54000; the store reads that page
/// row by row instead (``PostgresEventStore``).
enum EventPage {
    /// An `events` row's frame, for `string_agg(<frame>, ''::bytea)` over a page (beside `count(*)`).
    /// (`decode('00', 'hex')`, a zero byte, is folded into a constant when the statement is planned,
    /// and reads the same whatever `standard_conforming_strings` is.)
    static let frame = """
        \(EventCells.envelope)
            || textsend(stream_id) || decode('00', 'hex') || textsend(event_type) || decode('00', 'hex')
            || json_send(payload) || decode('00', 'hex')
            || CASE WHEN metadata::text = '{}' THEN ''::bytea ELSE json_send(metadata) END || decode('00', 'hex')
        """

    /// The events of a page, in log order.
    /// - Throws: `EventStoreError.Code.invalidArgument` when the bytes are not frames of the log's
    ///   columns (which would take an edited schema); never crashes on bad bytes.
    /// - Parameter count: The events the page holds, as the server counted them.
    static func decode(_ page: ByteBuffer, count: Int) throws -> [RecordedEvent] {
        try page.withUnsafeReadableBytes { raw -> [RecordedEvent] in
            var events: [RecordedEvent] = []
            events.reserveCapacity(min(count, raw.count / EventCells.envelopeSize))
            var offset = 0
            var sorted = true
            var lastPosition: LogPosition?
            // A page holds few type names many times: each is made once (a name over 15 bytes is an allocation).
            var typeNames: [(bytes: [UInt8], name: String)] = []
            while offset < raw.count {
                guard raw.count - offset > EventCells.envelopeSize else { throw EventCells.malformed("page") }
                let envelope = UnsafeRawBufferPointer(rebasing: raw[offset..<offset + EventCells.envelopeSize])
                offset += EventCells.envelopeSize
                let stream = try part(raw, &offset, "stream_id")
                let type = try part(raw, &offset, "event_type")
                let payload = try part(raw, &offset, "payload")
                let metadata = try part(raw, &offset, "metadata")
                guard let streamID = text(stream) else { throw EventCells.malformed("stream_id") }
                guard let typeName = name(type, in: &typeNames) else { throw EventCells.malformed("event_type") }
                guard let payloadJSON = EventCells.jsonText(payload) else { throw EventCells.malformed("payload") }
                let metadataJSON = EventCells.jsonText(metadata) ?? Data() // empty: `{}`
                let event = try EventCells.event(envelope: envelope, stream: streamID, type: typeName, payload: payloadJSON, metadata: metadataJSON)
                if let last = lastPosition, last >= event.position { sorted = false }
                lastPosition = event.position
                events.append(event)
            }
            guard events.count == count else { throw EventCells.malformed("page") }
            // string_agg keeps the order of its input, the ordered page, in practice; not promised, so checked.
            if !sorted { events.sort { $0.position < $1.position } }
            return events
        }
    }

    /// `text(bytes)`, or the same name made earlier in the page (up to 16 of them are kept).
    private static func name(_ bytes: UnsafeRawBufferPointer, in names: inout [(bytes: [UInt8], name: String)]) -> String? {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return text(bytes) }
        for known in names where known.bytes.count == bytes.count && known.bytes.withUnsafeBytes({ memcmp($0.baseAddress ?? base, base, bytes.count) == 0 }) {
            return known.name
        }
        guard let name = text(bytes) else { return nil }
        if names.count < 16 { names.append((Array(bytes), name)) }
        return name
    }

    /// UTF-8 bytes as a `String`; `nil` when they are not valid UTF-8. Stream ids and type names are
    /// ASCII, taken without the generic `String(validating:as:)` (whose type lookups had cost more
    /// than the rest of a page's decoding).
    private static func text(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return String(validating: bytes, as: UTF8.self) }
        return String(unsafeUninitializedCapacity: bytes.count) { buffer in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes)
            return bytes.count
        }
    }

    /// The bytes up to the next zero byte; `offset` moves past it.
    private static func part(_ raw: UnsafeRawBufferPointer, _ offset: inout Int, _ column: String) throws -> UnsafeRawBufferPointer {
        let start = offset
        guard start < raw.count, let base = raw.baseAddress,
            let zero = memchr(base + start, 0, raw.count - start)
        else { throw EventCells.malformed(column) }
        let end = base.distance(to: UnsafeRawPointer(zero))
        offset = end + 1
        return UnsafeRawBufferPointer(rebasing: raw[start..<end])
    }
}
