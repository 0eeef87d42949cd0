import Foundation
import Kappa
import PostgresNIO

/// A stored event as its chain hash covers it (``ChainHash``), with where it is and the hash stored
/// with it.
struct ChainedEvent: Sendable {
    let position: LogPosition
    let stream: String
    let version: Int64
    let eventID: UUID
    let eventType: String
    let schemaVersion: Int32
    /// `recorded_at` exactly as stored: microseconds since 2000-01-01 00:00:00 UTC.
    let recordedAtMicroseconds: Int64
    /// The `json` texts exactly as stored.
    let payload: [UInt8]
    let metadata: [UInt8]
    /// `event_hash`; `nil` when the row has none.
    let storedHash: [UInt8]?
}

extension ChainedEvent {
    /// Decodes a row selected with ``EventLogQueries/chainColumns``: every cell in its binary form,
    /// `recorded_at` as its stored microseconds (never through `Date`, which would round them) and
    /// the `json` cells as their text's bytes.
    /// - Throws: `EventStoreError.Code.invalidArgument` naming the column when a cell is not what
    ///   the log stores.
    init(row: PostgresRow) throws {
        var cells = row.makeIterator()
        func cell(_ column: String, _ type: PostgresDataType) throws -> PostgresCell {
            guard let cell = cells.next(), cell.dataType == type, cell.format == .binary else { throw EventCells.malformed(column) }
            return cell
        }
        func bytes(_ column: String, _ type: PostgresDataType, count: Int? = nil) throws -> [UInt8] {
            guard let buffer = try cell(column, type).bytes, count == nil || buffer.readableBytes == count else { throw EventCells.malformed(column) }
            return Array(buffer.readableBytesView)
        }
        func integer<I: FixedWidthInteger>(_ column: String, _ type: PostgresDataType, as: I.Type) throws -> I {
            let raw = try bytes(column, type, count: MemoryLayout<I>.size)
            return raw.reduce(0) { $0 << 8 | I($1) }
        }
        func text(_ column: String) throws -> String {
            guard let text = String(validating: try bytes(column, .text), as: UTF8.self) else { throw EventCells.malformed(column) }
            return text
        }

        let position = try integer("position", .int8, as: Int64.self)
        let transaction = try integer("transaction_id", .xid8, as: UInt64.self)
        self.position = LogPosition(transactionID: transaction, globalPosition: position)
        stream = try text("stream_id")
        version = try integer("stream_version", .int8, as: Int64.self)
        let id = try bytes("event_id", .uuid, count: 16)
        eventID = UUID(
            uuid: (
                id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7],
                id[8], id[9], id[10], id[11], id[12], id[13], id[14], id[15]
            ))
        eventType = try text("event_type")
        schemaVersion = try integer("schema_version", .int4, as: Int32.self)
        recordedAtMicroseconds = try integer("recorded_at", .timestamptz, as: Int64.self)
        payload = try bytes("payload", .json)
        metadata = try bytes("metadata", .json)
        let hash = try cell("event_hash", .bytea)
        storedHash = hash.bytes.map { Array($0.readableBytesView) }
    }
}
