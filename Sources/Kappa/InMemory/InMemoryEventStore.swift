import Foundation
import Synchronization

/// A log held in memory, for unit tests of domain logic.
///
/// It keeps the same promises as the PostgreSQL store (expected versions, idempotent appends,
/// one global order) but nothing survives the process. Never use it to test PostgreSQL code.
public final class InMemoryEventStore: EventStore {
    private struct State {
        var log: [RecordedEvent] = []
        var streams: [StreamID: [Int]] = [:]
        var byID: [UUID: Int] = [:]
        var transactions: UInt64 = 0
    }

    private let state = Mutex(State())

    /// An empty log.
    public init() {}

    /// Every stored event in log order.
    public var allEvents: [RecordedEvent] { state.withLock { $0.log } }

    /// Appends `events` to `stream` atomically if it is at `expectedVersion`, with the promises and errors
    /// of ``EventStore/append(_:to:expectedVersion:)``. The events of one append share a transaction id.
    public func append(_ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion) async throws -> AppendResult {
        try state.withLock { state in
            let existing = events.compactMap { state.byID[$0.id] }
            if !existing.isEmpty {
                let stored = existing.map { state.log[$0] }
                guard existing.count == events.count, stored.map(\.id) == events.map(\.id),
                    stored.allSatisfy({ $0.streamID == stream })
                else {
                    throw EventStoreError(
                        .duplicateEventID, stream: stream.rawValue,
                        message: "event id \(stored[0].id) is already stored in stream '\(stored[0].streamID)' at version \(stored[0].streamVersion)")
                }
                return AppendResult(streamVersion: stored.last!.streamVersion, positions: stored.map(\.position), wasAlreadyAppended: true)
            }
            guard !events.isEmpty else {
                throw EventStoreError(.invalidArgument, stream: stream.rawValue, message: "an append needs at least one event")
            }
            let current = Int64(state.streams[stream]?.count ?? 0)
            guard expectedVersion.isSatisfied(by: current) else {
                throw EventStoreError.versionConflict(stream: stream, expected: expectedVersion, actual: current)
            }
            state.transactions += 1
            var positions: [LogPosition] = []
            for (offset, event) in events.enumerated() {
                let position = LogPosition(transactionID: state.transactions, globalPosition: Int64(state.log.count + 1))
                state.byID[event.id] = state.log.count
                state.streams[stream, default: []].append(state.log.count)
                state.log.append(
                    RecordedEvent(
                        id: event.id, streamID: stream, streamVersion: current + Int64(offset) + 1, position: position,
                        eventType: event.eventType.rawValue, schemaVersion: event.schemaVersion, payload: event.payload,
                        metadata: event.metadata, recordedAt: event.recordedAt))
                positions.append(position)
            }
            return AppendResult(streamVersion: current + Int64(events.count), positions: positions)
        }
    }

    /// Up to `limit` events of `stream` with versions from `version` on, in version order.
    public func readStream(_ stream: StreamID, from version: Int64, limit: Int) async throws -> [RecordedEvent] {
        state.withLock { state in
            let indices = state.streams[stream] ?? []
            let start = Int(max(version, 1)) - 1
            guard start < indices.count else { return [] }
            return indices[start..<min(indices.count, start + limit)].map { state.log[$0] }
        }
    }

    /// Up to `limit` events of the whole log after `position`, in log order. Every append is readable at
    /// once: no transaction is ever left open here.
    public func readLog(after position: LogPosition, limit: Int) async throws -> [RecordedEvent] {
        state.withLock { state in
            Array(state.log.lazy.filter { $0.position > position }.prefix(limit))
        }
    }
}
