import Kappa

/// A side-effecting event handler — send an e-mail, call another service — as opposed to a
/// ``Projection``, which only writes its read model.
///
/// A reactor keeps a checkpoint of its own, apart from every projection version, so rebuilding or
/// replaying a read model never runs it again. It runs at least once per event: the checkpoint moves
/// after ``react(to:)`` returns, so make effects idempotent (the event id is a good key).
public protocol Reactor: Sendable {
    /// 1…40 lower-case ASCII letters, digits and `_`, starting with a letter.
    var name: String { get }
    /// The event types ``react(to:)`` is given; `nil` means every event.
    var eventTypes: Set<String>? { get }
    /// Where a reactor seen for the first time starts. Default ``ReactorStart/now``.
    var start: ReactorStart { get }
    /// Acts on one event. A throw retries the same event with the runtime's backoff until it returns
    /// (the runner keeps its lease meanwhile, so no other process acts on the event beside it); the
    /// checkpoint moves only after that. A graceful shutdown ends the retries; the next run starts there.
    func react(to event: RecordedEvent) async throws
}

extension Reactor {
    /// Default: `nil`, every event.
    public var eventTypes: Set<String>? { nil }
    /// Default: ``ReactorStart/now``.
    public var start: ReactorStart { .now }
}

/// Where a new reactor starts reading the log.
public enum ReactorStart: Sendable, Hashable {
    /// At the log's horizon when it is first registered: history is not acted on again. Events
    /// committed just before registration while an older transaction that may append was still open
    /// lie beyond that horizon and are handed to the reactor (it never misses one appended after).
    case now
    /// With the first event in the log.
    case beginning
}
