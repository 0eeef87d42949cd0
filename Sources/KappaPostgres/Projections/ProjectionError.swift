import Kappa

/// An error from the projection runtime, naming the projection and, where there is one, the event.
public struct ProjectionError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. New codes may be added in minor releases, so switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A projection's or reactor's handler threw for an event.
        public static let handlerFailed = Code("handlerFailed")
        /// A projection's `setupSQL` failed.
        public static let setupFailed = Code("setupFailed")
        /// A read-your-writes wait ran out of time before the projection passed the position.
        public static let timedOut = Code("timedOut")
        /// No projection of that name (and version) is registered.
        public static let unknownProjection = Code("unknownProjection")
        /// Two projections (or reactors) share a name and version.
        public static let duplicateProjection = Code("duplicateProjection")
        /// No such version of the projection is registered in the read-model database.
        public static let unknownVersion = Code("unknownVersion")
        /// The version has not caught up with the log (or lags more than allowed) and cannot serve.
        public static let notCaughtUp = Code("notCaughtUp")
        /// The operation needs a version that is not the active one (dropping it, for one).
        public static let versionIsActive = Code("versionIsActive")
        /// Only a retired version can be dropped.
        public static let notRetired = Code("notRetired")
        /// The version was dropped; rebuild it to use it again.
        public static let versionDropped = Code("versionDropped")
        /// Another runner holds the version (it is being rebuilt or followed elsewhere).
        public static let rebuildInProgress = Code("rebuildInProgress")
        /// Promoting a version lower than the active one; that is what rollback is for.
        public static let versionBelowActive = Code("versionBelowActive")
        /// Rollback with no retired, lower version to go back to.
        public static let noPreviousVersion = Code("noPreviousVersion")
        /// The version is already the active one.
        public static let alreadyActive = Code("alreadyActive")
        /// A schema the version would own (its tables, or the projection's stable names) exists and is
        /// not one Kappa created for it: Kappa never adopts a schema, so dropping a version drops only its own.
        public static let schemaNotOwned = Code("schemaNotOwned")
        /// A switch would drop a stable name whose columns the new version changes, and objects of
        /// others (a view of their own) depend on it.
        public static let dependentObjects = Code("dependentObjects")
    }

    /// What went wrong; switch on it with a `default`.
    public var code: Code
    /// The name of the projection (or reactor) at fault.
    public var projection: String
    /// The projection version at fault, when there is one.
    public var version: Int?
    /// The type of the event at fault, when there is one.
    public var eventType: String?
    /// The log position at fault (the event's, or the one waited for), when there is one.
    public var position: LogPosition?
    /// A human-readable account.
    public var message: String

    /// An error of `code` about `projection`; the other fields name what was at fault, where there is one.
    public init(_ code: Code, projection: String, version: Int? = nil, eventType: String? = nil, position: LogPosition? = nil, message: String) {
        self.code = code
        self.projection = projection
        self.version = version
        self.eventType = eventType
        self.position = position
        self.message = message
    }

    public var description: String {
        var text = "ProjectionError.\(code): projection \(projection)"
        if let version { text += " v\(version)" }
        if let eventType { text += ", event type \(eventType)" }
        if let position { text += ", position \(position)" }
        return text + ": \(message)"
    }
}

/// The lease moved to another runner: stop writing, roll back.
struct LeaseLost: Error {}

/// A handler threw (not a transient database fault): the batch is suspect.
struct HandlerFailure: Error {
    let event: RecordedEvent?
    let underlying: any Error

    /// The failure of a batch of `events`: it names the event when the batch held only that one.
    init(_ events: [RecordedEvent], underlying: any Error) {
        self.event = events.count == 1 ? events[0] : nil
        self.underlying = underlying
    }
}

/// What to do with an event a projection's handler keeps rejecting (a poison event).
public enum PoisonEventPolicy: Sendable, Hashable {
    /// Stop the projection at that event; its status shows the position, event and error. The default.
    case stop
    /// Record the event and error in the dead-letter table, move past it and carry on.
    /// ``ProjectionRuntime/retryDeadLetters(projection:version:)`` tries them again later.
    case deadLetter
}
