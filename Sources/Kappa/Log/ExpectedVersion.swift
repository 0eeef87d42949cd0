/// What an append expects the stream's current version to be: optimistic concurrency control.
///
/// Stream versions start at 1 with a stream's first event; a stream that has no events is at version 0.
public enum ExpectedVersion: Hashable, Sendable, CustomStringConvertible {
    /// Append whatever the stream's version.
    case any
    /// The stream must have no events yet (version 0).
    case noStream
    /// The stream must have at least one event.
    case streamExists
    /// The stream must be at exactly this version; `.exact(0)` is the same as ``noStream``.
    case exact(Int64)

    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no stream"
        case .streamExists: "stream exists"
        case .exact(let version): "version \(version)"
        }
    }

    /// Whether a stream at `version` satisfies this expectation.
    public func isSatisfied(by version: Int64) -> Bool {
        switch self {
        case .any: true
        case .noStream: version == 0
        case .streamExists: version > 0
        case .exact(let expected): version == expected
        }
    }
}
