import Foundation

/// An encoded event on its way into the log: what ``EventStore/append(_:to:expectedVersion:)`` takes.
///
/// Usually made by ``EventRegistry/encode(_:id:recordedAt:metadata:)``.
public struct NewEvent: Sendable, Hashable {
    /// The event's unique id. Appending an event whose id is already in the log is idempotent.
    public var id: UUID
    /// The stable name of the event's type.
    public var eventType: EventTypeName
    /// The version of the type's stored shape that `payload` is encoded at.
    public var schemaVersion: Int
    /// The payload as UTF-8 JSON (an object).
    public var payload: Data
    /// Correlation and causation ids and custom keys, stored beside the payload.
    public var metadata: EventMetadata
    /// When the event was recorded, as the writer stamped it; stored as given (to the microsecond in PostgreSQL).
    public var recordedAt: Date

    /// An event ready to append; `payload` must be JSON text in UTF-8.
    public init(id: UUID, eventType: EventTypeName, schemaVersion: Int, payload: Data, metadata: EventMetadata = .init(), recordedAt: Date) {
        self.id = id
        self.eventType = eventType
        self.schemaVersion = schemaVersion
        self.payload = payload
        self.metadata = metadata
        self.recordedAt = recordedAt
    }
}
