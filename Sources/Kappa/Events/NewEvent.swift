import Foundation

/// An encoded event on its way into the log: what ``EventStore/append(_:to:expectedVersion:)`` takes.
///
/// Usually made by ``EventRegistry/encode(_:id:recordedAt:metadata:)``.
public struct NewEvent: Sendable, Hashable {
    /// The event's unique id. Appending an event whose id is already in the log is idempotent.
    public var id: UUID
    public var eventType: EventTypeName
    public var schemaVersion: Int
    /// The payload as UTF-8 JSON (an object).
    public var payload: Data
    public var metadata: EventMetadata
    public var recordedAt: Date

    public init(id: UUID, eventType: EventTypeName, schemaVersion: Int, payload: Data, metadata: EventMetadata = .init(), recordedAt: Date) {
        self.id = id
        self.eventType = eventType
        self.schemaVersion = schemaVersion
        self.payload = payload
        self.metadata = metadata
        self.recordedAt = recordedAt
    }
}
