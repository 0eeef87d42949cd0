import Foundation

/// An event as stored in the log: the envelope and the still-encoded payload.
public struct RecordedEvent: Sendable, Hashable {
    public var id: UUID
    public var streamID: StreamID
    /// 1 for a stream's first event, then 2, 3, …
    public var streamVersion: Int64
    /// Where the event stands in the log's global order.
    public var position: LogPosition
    /// The stored type name (not validated: a log may hold names this program does not know).
    public var eventType: String
    public var schemaVersion: Int
    /// The payload as UTF-8 JSON.
    public var payload: Data
    public var metadata: EventMetadata
    public var recordedAt: Date

    public init(
        id: UUID, streamID: StreamID, streamVersion: Int64, position: LogPosition, eventType: String,
        schemaVersion: Int, payload: Data, metadata: EventMetadata, recordedAt: Date
    ) {
        self.id = id
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.position = position
        self.eventType = eventType
        self.schemaVersion = schemaVersion
        self.payload = payload
        self.metadata = metadata
        self.recordedAt = recordedAt
    }
}

/// A decoded event with its envelope.
public struct Envelope<Event: Sendable>: Sendable {
    public var event: Event
    public var id: UUID
    public var streamID: StreamID
    public var streamVersion: Int64
    public var position: LogPosition
    public var eventType: String
    /// The schema version the event was stored at (before upcasting).
    public var storedSchemaVersion: Int
    public var metadata: EventMetadata
    public var recordedAt: Date
}
