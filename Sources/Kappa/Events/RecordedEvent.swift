import Foundation

/// An event as stored in the log: the envelope and the still-encoded payload.
public struct RecordedEvent: Sendable, Hashable {
    /// The event's unique id, as given when it was appended.
    public var id: UUID
    /// The stream the event belongs to.
    public var streamID: StreamID
    /// 1 for a stream's first event, then 2, 3, …
    public var streamVersion: Int64
    /// Where the event stands in the log's global order.
    public var position: LogPosition
    /// The stored type name (not validated: a log may hold names this program does not know).
    public var eventType: String
    /// The schema version the payload was stored at (upcasters lift older ones when it is decoded).
    public var schemaVersion: Int
    /// The payload as UTF-8 JSON.
    public var payload: Data
    /// Correlation and causation ids and custom keys.
    public var metadata: EventMetadata
    /// When the event was recorded, as the writer stamped it.
    public var recordedAt: Date

    /// A recorded event from its parts; stores make these when reading, tests may make them directly.
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
    /// The decoded event, upcast to its registered schema version.
    public var event: Event
    /// The event's unique id.
    public var id: UUID
    /// The stream the event belongs to.
    public var streamID: StreamID
    /// 1 for a stream's first event, then 2, 3, …
    public var streamVersion: Int64
    /// Where the event stands in the log's global order.
    public var position: LogPosition
    /// The stored type name.
    public var eventType: String
    /// The schema version the event was stored at (before upcasting).
    public var storedSchemaVersion: Int
    /// Correlation and causation ids and custom keys.
    public var metadata: EventMetadata
    /// When the event was recorded, as the writer stamped it.
    public var recordedAt: Date
}
