import Foundation

/// What is stored beside an event's payload: where it came from and why.
///
/// Stored as one flat JSON object: `correlationId`, `causationId` and your own string keys.
public struct EventMetadata: Hashable, Sendable, Codable {
    /// Ties together everything caused by one original request.
    public var correlationID: UUID?
    /// The id of the message (command or event) that caused this event.
    public var causationID: UUID?
    /// Your own keys, such as `userId` or `tenant`. The keys `correlationId` and `causationId` are reserved.
    public var custom: [String: String]

    /// Metadata with the given ids and custom keys, each empty by default. A custom key named
    /// `correlationId` or `causationId` makes encoding fail.
    public init(correlationID: UUID? = nil, causationID: UUID? = nil, custom: [String: String] = [:]) {
        self.correlationID = correlationID
        self.causationID = causationID
        self.custom = custom
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
        static let correlation = Key(stringValue: "correlationId")
        static let causation = Key(stringValue: "causationId")
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        correlationID = try container.decodeIfPresent(UUID.self, forKey: .correlation)
        causationID = try container.decodeIfPresent(UUID.self, forKey: .causation)
        custom = [:]
        for key in container.allKeys where key.stringValue != Key.correlation.stringValue && key.stringValue != Key.causation.stringValue {
            custom[key.stringValue] = try container.decode(String.self, forKey: key)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(correlationID, forKey: .correlation)
        try container.encodeIfPresent(causationID, forKey: .causation)
        for (key, value) in custom {
            guard key != Key.correlation.stringValue, key != Key.causation.stringValue else {
                throw EncodingError.invalidValue(
                    value,
                    .init(
                        codingPath: [Key(stringValue: key)], debugDescription: "'\(key)' is a reserved metadata key"))
            }
            try container.encode(value, forKey: Key(stringValue: key))
        }
    }
}
