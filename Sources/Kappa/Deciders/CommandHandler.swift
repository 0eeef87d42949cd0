import Foundation
import Logging

/// Runs commands against streams: load the stream, fold its state, decide, append with the expected
/// version; on a version conflict, reload and decide again, a bounded number of times.
///
/// Errors thrown by `decide` (broken business rules) pass through unchanged and nothing is appended.
public struct CommandHandler<Command: Sendable, Event: Sendable, State: Sendable>: Sendable {
    /// How the handler retries and reads.
    public struct Configuration: Sendable {
        /// How many times a command is decided before a version conflict is given up on. Default 10.
        public var maximumAttempts = 10
        /// The first pause after a conflict; it doubles each attempt, with full jitter. Default 2 ms.
        public var initialBackoff: Duration = .milliseconds(2)
        /// The longest pause between attempts. Default 100 ms.
        public var maximumBackoff: Duration = .milliseconds(100)
        /// Events read per round trip when loading a stream. Default 1,000.
        public var readBatchSize = 1_000

        /// Every value at its default: 10 attempts, 2 ms to 100 ms backoff, 1,000 events per read.
        public init() {}
    }

    /// The aggregate's rules: how commands are decided and how events change its state.
    public let decider: Decider<Command, Event, State>
    /// Encodes the decided events and decodes the stream's stored ones.
    public let registry: EventRegistry<Event>
    /// The log streams are loaded from and appended to.
    public let store: any EventStore
    /// How the handler retries and reads.
    public let configuration: Configuration
    private let makeEventID: @Sendable () -> UUID
    private let now: @Sendable () -> Date
    private let logger: Logger

    /// A handler that runs commands through `decider` against the streams of `store`.
    /// - Parameters:
    ///   - decider: Decides a command's events from the stream's state, and evolves the state.
    ///   - registry: Encodes the decided events and decodes the stream's stored ones.
    ///   - store: The log streams are loaded from and appended to.
    ///   - configuration: How the handler retries and reads (defaults documented on ``Configuration``).
    ///   - makeEventID: The source of event ids (UUIDv7 from ``EventIDGenerator/shared``); inject a
    ///     deterministic one in tests.
    ///   - now: The clock that stamps `recordedAt`; inject a fixed one in tests.
    ///   - logger: Where retries and conflicts are logged (`kappa.*` metadata).
    public init(
        decider: Decider<Command, Event, State>,
        registry: EventRegistry<Event>,
        store: any EventStore,
        configuration: Configuration = .init(),
        makeEventID: @escaping @Sendable () -> UUID = { EventIDGenerator.shared.next() },
        now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) {
        self.decider = decider
        self.registry = registry
        self.store = store
        self.configuration = configuration
        self.makeEventID = makeEventID
        self.now = now
        self.logger = logger
    }

    /// A stream's current state and version (0 when the stream has no events).
    public func load(_ stream: StreamID) async throws -> (state: State, version: Int64) {
        var state = decider.initialState
        var version: Int64 = 0
        for try await batch in store.streamEvents(stream, batchSize: configuration.readBatchSize) {
            for recorded in batch {
                guard let envelope = try registry.decode(recorded) else { continue }
                state = decider.evolve(state, envelope.event)
                version = recorded.streamVersion
            }
        }
        return (state, version)
    }

    /// Decides `command` on `stream` and appends the resulting events.
    /// - Throws: whatever `decide` throws; ``EventStoreError`` with ``EventStoreError/Code/versionConflict``
    ///   after ``Configuration/maximumAttempts`` conflicts.
    public func handle(_ command: Command, on stream: StreamID, metadata: EventMetadata = .init()) async throws -> CommandResult<Event, State> {
        var attempt = 0
        while true {
            attempt += 1
            let (state, version) = try await load(stream)
            let events = try decider.decide(command, state)
            let newState = decider.fold(events, from: state)
            if events.isEmpty {
                return CommandResult(events: [], state: newState, streamVersion: version, positions: [], attempts: attempt)
            }
            let stamped = now()
            let encoded = try events.map { try registry.encode($0, id: makeEventID(), recordedAt: stamped, metadata: metadata) }
            do {
                let result = try await store.append(encoded, to: stream, expectedVersion: .exact(version))
                return CommandResult(events: events, state: newState, streamVersion: result.streamVersion, positions: result.positions, attempts: attempt)
            } catch let error as EventStoreError where error.code == .versionConflict && attempt < configuration.maximumAttempts {
                logger.debug(
                    "version conflict, deciding again",
                    metadata: [
                        "kappa.stream": "\(stream)", "kappa.attempt": "\(attempt)", "kappa.expected_version": "\(version)",
                    ])
                try await Task.sleep(for: backoff(attempt: attempt))
            }
        }
    }

    private func backoff(attempt: Int) -> Duration {
        let growth = Double(1 << min(attempt - 1, 16))
        let cap = min(configuration.initialBackoff * growth, configuration.maximumBackoff)
        return cap * Double.random(in: 0...1)
    }
}

/// What ``CommandHandler/handle(_:on:metadata:)`` did.
public struct CommandResult<Event: Sendable, State: Sendable>: Sendable {
    /// The events appended (empty when the command changed nothing).
    public var events: [Event]
    /// The state after those events.
    public var state: State
    /// The stream's version after the append.
    public var streamVersion: Int64
    /// Where the events landed in the log; the last one is what to wait for to read your own write.
    public var positions: [LogPosition]
    /// How many times the command was decided (1 unless a version conflict forced a retry).
    public var attempts: Int
}
