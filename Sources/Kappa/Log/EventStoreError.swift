/// An error from the log or from encoding and decoding events.
///
/// Match on ``code``; the other fields name what was at fault (stream, position, event type, field).
public struct EventStoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. New codes may be added in minor releases, so switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A stream id broke the rules of ``StreamID``.
        public static let invalidStreamID = Code("invalidStreamID")
        /// An event type name broke the rules of ``EventTypeName``.
        public static let invalidEventType = Code("invalidEventType")
        /// The stream was not at the version the append expected. Nothing was written.
        public static let versionConflict = Code("versionConflict")
        /// Some of the event ids were already in the log, but not as this same append. Nothing was written.
        public static let duplicateEventID = Code("duplicateEventID")
        /// An event or its metadata could not be encoded. Nothing was written.
        public static let encodingFailed = Code("encodingFailed")
        /// A stored payload could not be decoded into its registered type.
        public static let decodingFailed = Code("decodingFailed")
        /// A stored event's type name is not registered.
        public static let unknownEventType = Code("unknownEventType")
        /// A stored event has a schema version with no upcaster path to the registered type's version.
        public static let unsupportedSchemaVersion = Code("unsupportedSchemaVersion")
        /// The connection to the database was lost. An append either happened fully or not at all;
        /// re-sending it with the same event ids is safe (appends are idempotent on event id).
        public static let connectionLost = Code("connectionLost")
        /// The database refused the statement for another reason; see ``underlying``.
        public static let database = Code("database")
        /// The log holds order keys at or above the ones its server gives next: it was restored or
        /// failed over from another server, and its order must be repaired before anything is
        /// appended (`PostgresEventStore.repairOrder()`, which `migrate()` and plain appends run).
        public static let orderNeedsRepair = Code("orderNeedsRepair")
        /// An append had no events, too many, or a stored row broke an invariant.
        public static let invalidArgument = Code("invalidArgument")
    }

    /// What went wrong; switch on it with a `default`.
    public var code: Code
    /// The stream at fault, when there is one.
    public var stream: String?
    /// The log position at fault, when there is one.
    public var position: LogPosition?
    /// The event type at fault, when there is one.
    public var eventType: String?
    /// For ``Code/versionConflict``: what the append expected and what the stream was at.
    public var expectedVersion: ExpectedVersion?
    /// For ``Code/versionConflict``: the version the stream was at; `nil` when the store did not read it.
    public var actualVersion: Int64?
    /// A human-readable account.
    public var message: String
    /// The error underneath (a decoding error, a driver error), when there is one.
    public var underlying: (any Error & Sendable)?

    /// An error of `code`; the other fields name what was at fault, where there is one.
    public init(
        _ code: Code,
        stream: String? = nil,
        position: LogPosition? = nil,
        eventType: String? = nil,
        message: String,
        underlying: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.stream = stream
        self.position = position
        self.eventType = eventType
        self.message = message
        self.underlying = underlying
    }

    /// A version conflict on `stream`.
    public static func versionConflict(stream: StreamID, expected: ExpectedVersion, actual: Int64?) -> EventStoreError {
        var error = EventStoreError(
            .versionConflict, stream: stream.rawValue,
            message: "stream '\(stream)' expected \(expected) but is at \(actual.map { "version \($0)" } ?? "a newer version")"
        )
        error.expectedVersion = expected
        error.actualVersion = actual
        return error
    }

    public var description: String {
        var parts = ["EventStoreError.\(code): \(message)"]
        if let stream { parts.append("stream: \(stream)") }
        if let position { parts.append("position: \(position)") }
        if let eventType { parts.append("event type: \(eventType)") }
        if let underlying { parts.append("underlying: \(String(reflecting: underlying))") }
        return parts.joined(separator: "; ")
    }
}
