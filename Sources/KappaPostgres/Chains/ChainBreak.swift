import Foundation
import Kappa

/// An event whose hash chain does not hold: the event a verification names
/// (``PostgresEventStore/verifyChains(stream:pageSize:progress:)``).
public struct ChainBreak: Sendable, Hashable, CustomStringConvertible {
    /// Why the event's hash does not hold. New reasons may be added in minor releases, so switch
    /// with a `default`.
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The stored hash is not SHA-256 of the predecessor's stored hash and this event's content:
        /// this event's content changed, or its predecessor's did and the predecessor's hash was
        /// rewritten to match (an edit that stops short of rewriting the rest of the stream).
        public static let contentChanged = Reason("contentChanged")
        /// The event before it in its stream (version N-1) is not in the log: it was deleted.
        public static let predecessorMissing = Reason("predecessorMissing")
        /// The event has no stored hash at all.
        public static let hashMissing = Reason("hashMissing")
    }

    /// The stream of the event.
    public var stream: String
    /// The event's version in its stream.
    public var version: Int64
    /// The event's place in the log.
    public var position: LogPosition
    /// The event's id.
    public var eventID: UUID
    /// The event's type name.
    public var eventType: String
    /// Why its hash does not hold.
    public var reason: Reason

    /// A break of `reason` at the event so described.
    public init(stream: String, version: Int64, position: LogPosition, eventID: UUID, eventType: String, reason: Reason) {
        (self.stream, self.version, self.position, self.eventID, self.eventType, self.reason) = (stream, version, position, eventID, eventType, reason)
    }

    /// `stream 'cart-1' version 3 (position 812/45, event …, ItemAdded): …why…`
    public var description: String {
        "stream '\(stream)' version \(version) (position \(position), event \(eventID), \(eventType)): \(explanation)"
    }

    /// Why, in words.
    public var explanation: String {
        switch reason {
        case .contentChanged:
            "its content no longer matches its hash — it was edited, or its predecessor was and had its hash rewritten"
        case .predecessorMissing:
            "its predecessor, version \(version - 1), is missing — deleted"
        case .hashMissing:
            "it has no hash"
        default:
            "\(reason)"
        }
    }
}
