import Foundation

/// The event types of one domain (usually an aggregate's event enum), their stored names,
/// schema versions and upcasters: how events are encoded for the log and decoded back.
///
/// ```swift
/// enum CartEvent: Sendable {
///     case opened(CartOpened)
///     case itemAdded(ItemAddedToCart)
///     var payload: any DomainEvent {
///         switch self { case .opened(let e): e; case .itemAdded(let e): e }
///     }
/// }
/// let registry = EventRegistry<CartEvent>(payload: \.payload) {
///     $0.register(CartOpened.self, as: CartEvent.opened)
///     $0.register(ItemAddedToCart.self, as: CartEvent.itemAdded, upcasters: [...])
/// }
/// ```
/// Dates in payloads are stored as ISO 8601 strings. Payloads are decoded with ``PayloadDecoder``
/// (the results of `JSONDecoder`, several times faster); upcasters get a `JSONDecoder`.
public struct EventRegistry<Event: Sendable>: Sendable {
    struct Entry: Sendable {
        var schemaVersion: Int
        var decode: @Sendable (Data) throws -> Event
        var upcasters: [Int: Upcaster]
    }

    private var entries: [String: Entry] = [:]
    private let payload: @Sendable (Event) -> any DomainEvent

    /// - Parameters:
    ///   - payload: The stored event that an `Event` value stands for.
    ///   - registrations: Registers each event type; see ``register(_:as:upcasters:)``.
    public init(payload: @escaping @Sendable (Event) -> any DomainEvent, _ registrations: (inout EventRegistry) -> Void = { _ in }) {
        self.payload = payload
        registrations(&self)
    }

    /// Registers `type` under its ``DomainEvent/eventType``; `wrap` turns it into an `Event`.
    /// Registering a name twice replaces the earlier registration.
    public mutating func register<T: DomainEvent>(
        _ type: T.Type, as wrap: @escaping @Sendable (T) -> Event, upcasters: [Upcaster] = []
    ) {
        precondition(T.schemaVersion >= 1, "\(T.self).schemaVersion must be at least 1")
        entries[T.eventType.rawValue] = Entry(
            schemaVersion: T.schemaVersion,
            decode: { data in wrap(try PayloadDecoder().decode(T.self, from: data)) },
            upcasters: Dictionary(upcasters.map { ($0.fromVersion, $0) }, uniquingKeysWith: { _, last in last })
        )
    }

    /// The registered type names.
    public var eventTypes: Set<String> { Set(entries.keys) }

    /// Whether `eventType` is registered.
    public func isRegistered(_ eventType: String) -> Bool { entries[eventType] != nil }

    /// Encodes `event` for appending.
    /// - Throws: ``EventStoreError/Code/encodingFailed`` when the payload or metadata cannot be encoded
    ///   or the event's type is not registered (so it could not be read back).
    public func encode(_ event: Event, id: UUID, recordedAt: Date, metadata: EventMetadata = .init()) throws -> NewEvent {
        let domainEvent = payload(event)
        let type = Swift.type(of: domainEvent)
        let name = type.eventType
        guard let entry = entries[name.rawValue], entry.schemaVersion == type.schemaVersion else {
            throw EventStoreError(
                .encodingFailed, eventType: name.rawValue,
                message: "'\(name)' (\(type)) is not registered in this EventRegistry, so it could not be read back")
        }
        let data: Data
        do {
            data = try Self.makeEncoder().encode(domainEvent)
            _ = try Self.makeEncoder().encode(metadata)
        } catch {
            throw EventStoreError(
                .encodingFailed, eventType: name.rawValue,
                message: "cannot encode '\(name)': \(describe(error))", underlying: error)
        }
        return NewEvent(id: id, eventType: name, schemaVersion: type.schemaVersion, payload: data, metadata: metadata, recordedAt: recordedAt)
    }

    /// What ``decode(_:unknownTypes:)`` does with a type name that is not registered.
    public enum UnknownTypePolicy: Sendable {
        /// Throw ``EventStoreError/Code/unknownEventType`` (the default).
        case fail
        /// Return `nil` for such events. Choose this only where ignoring other domains' events is meant.
        case skip
    }

    /// Decodes a stored event, upcasting older schema versions to the registered one.
    /// - Returns: `nil` only for an unknown type under ``UnknownTypePolicy/skip``.
    /// - Throws: ``EventStoreError`` naming the stream, position, type and field at fault.
    public func decode(_ recorded: RecordedEvent, unknownTypes: UnknownTypePolicy = .fail) throws -> Envelope<Event>? {
        guard let entry = entries[recorded.eventType] else {
            if unknownTypes == .skip { return nil }
            throw failure(.unknownEventType, recorded, "event type '\(recorded.eventType)' is not registered")
        }
        guard recorded.schemaVersion <= entry.schemaVersion, recorded.schemaVersion >= 1 else {
            throw failure(
                .unsupportedSchemaVersion, recorded,
                "stored schema version \(recorded.schemaVersion) is newer than the registered version \(entry.schemaVersion)")
        }
        var data = recorded.payload
        for version in recorded.schemaVersion..<entry.schemaVersion {
            guard let upcaster = entry.upcasters[version] else {
                throw failure(
                    .unsupportedSchemaVersion, recorded,
                    "no upcaster from schema version \(version) to \(version + 1) of '\(recorded.eventType)'")
            }
            do {
                data = try upcaster.transform(data, Self.makeDecoder(), Self.makeEncoder())
            } catch {
                throw failure(.decodingFailed, recorded, "upcasting from schema version \(version) failed: \(describe(error))", error)
            }
        }
        let event: Event
        do {
            event = try entry.decode(data)
        } catch {
            throw failure(.decodingFailed, recorded, "cannot decode the payload: \(describe(error))", error)
        }
        return Envelope(
            event: event, id: recorded.id, streamID: recorded.streamID, streamVersion: recorded.streamVersion,
            position: recorded.position, eventType: recorded.eventType, storedSchemaVersion: recorded.schemaVersion,
            metadata: recorded.metadata, recordedAt: recorded.recordedAt
        )
    }

    private func failure(_ code: EventStoreError.Code, _ recorded: RecordedEvent, _ message: String, _ underlying: (any Error)? = nil) -> EventStoreError {
        EventStoreError(
            code, stream: recorded.streamID.rawValue, position: recorded.position, eventType: recorded.eventType,
            message: "\(message) (stream '\(recorded.streamID)' version \(recorded.streamVersion), position \(recorded.position))",
            underlying: underlying.map { SendableErrorBox(description: describe($0)) })
    }

    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

extension EventRegistry where Event: DomainEvent {
    /// A registry of one event type that is its own payload.
    public init(upcasters: [Upcaster] = []) {
        self.init(payload: { $0 }) { $0.register(Event.self, as: { $0 }, upcasters: upcasters) }
    }
}
