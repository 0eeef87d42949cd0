import Foundation
import Kappa
import Logging
import PostgresNIO

extension PostgresEventStore {
    public func append(_ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion) async throws -> AppendResult {
        let query = try appendQuery(events, to: stream, expectedVersion: expectedVersion)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let result = try await self.append(query, events, to: stream, expectedVersion: expectedVersion, on: nil)
                if !result.wasAlreadyAppended { notifier?.appended() }
                return result
            } catch let error as EventStoreError where error.code == .versionConflict && expectedVersion == .any
                && attempt <= configuration.anyVersionRetries {
                continue
            }
        }
    }

    /// Runs `body` in one transaction whose appends commit or roll back together.
    public func withTransaction<Result: Sendable>(_ body: (Transaction) async throws -> Result) async throws -> Result {
        do {
            let result = try await client.withTransaction(logger: logger) { connection in
                try await body(Transaction(store: self, connection: connection))
            }
            notifier?.appended()
            return result
        } catch let error as PostgresTransactionError {
            throw error.cause { Self.translate($0, stream: nil) }
        }
    }

    /// A transaction of the event store: appends in it commit together or not at all.
    public struct Transaction: Sendable {
        let store: PostgresEventStore
        /// The connection the transaction runs on, for writing your own tables in the same transaction.
        public let connection: PostgresConnection

        /// Appends as ``PostgresEventStore/append(_:to:expectedVersion:)`` does, inside this transaction.
        /// An error here leaves the transaction unusable: let it roll back.
        public func append(_ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion) async throws -> AppendResult {
            let query = try store.appendQuery(events, to: stream, expectedVersion: expectedVersion)
            return try await store.append(query, events, to: stream, expectedVersion: expectedVersion, on: connection, inTransaction: true)
        }
    }

    func appendQuery(_ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion) throws -> PostgresQuery {
        guard !events.isEmpty else {
            throw EventStoreError(.invalidArgument, stream: stream.rawValue, message: "an append needs at least one event")
        }
        let metadata = try events.map { event -> String in
            if event.metadata == EventMetadata() { return "{}" }
            do {
                return String(decoding: try JSONEncoder().encode(event.metadata), as: UTF8.self)
            } catch {
                throw EventStoreError(.encodingFailed, stream: stream.rawValue, eventType: event.eventType.rawValue,
                                      message: "cannot encode the metadata of event \(event.id): \(error)")
            }
        }
        return queries.append(events, metadata: metadata, stream: stream, expected: expectedVersion)
    }

    func append(
        _ query: PostgresQuery, _ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion,
        on connection: PostgresConnection?, inTransaction: Bool = false
    ) async throws -> AppendResult {
        var rows: [(Int64, Int64, Int64)] = []
        do {
            for try await row in try await self.query(query, on: connection).decode((Int64, Int64, Int64).self) {
                rows.append(row)
            }
        } catch let error as PSQLError {
            let translated = Self.translate(error, stream: stream)
            guard !inTransaction, translated.code == .versionConflict || translated.code == .duplicateEventID else {
                throw translated
            }
            return try await resolveRejected(events, to: stream, expectedVersion: expectedVersion, on: connection)
        }
        guard let last = rows.last else {
            // The expected version did not hold: nothing was written.
            if inTransaction {
                throw EventStoreError.versionConflict(stream: stream, expected: expectedVersion, actual: nil)
            }
            return try await resolveRejected(events, to: stream, expectedVersion: expectedVersion, on: connection)
        }
        return AppendResult(
            streamVersion: last.2,
            positions: rows.map { LogPosition(transactionID: UInt64($0.1), globalPosition: $0.0) })
    }

    /// Why an append wrote nothing: a repeat of an earlier append (return its result), a partial
    /// repeat (duplicate ids), or a version conflict. Nothing was written either way.
    private func resolveRejected(
        _ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion, on connection: PostgresConnection?
    ) async throws -> AppendResult {
        var stored: [(stream: String, version: Int64, id: UUID, position: LogPosition)] = []
        for try await (streamID, version, id, position, transaction) in try await self.query(
            queries.eventsByID(events.map(\.id)), on: connection
        ).decode((String, Int64, UUID, Int64, Int64).self) {
            stored.append((streamID, version, id, LogPosition(transactionID: UInt64(transaction), globalPosition: position)))
        }
        if let first = stored.first {
            guard stored.count == events.count, stored.map(\.id) == events.map(\.id),
                  stored.allSatisfy({ $0.stream == stream.rawValue }) else {
                throw EventStoreError(.duplicateEventID, stream: stream.rawValue,
                    message: "event id \(first.id) is already stored in stream '\(first.stream)' at version \(first.version); nothing was written")
            }
            return AppendResult(streamVersion: stored.last!.version, positions: stored.map(\.position), wasAlreadyAppended: true)
        }
        var actual: Int64?
        for try await version in try await self.query(queries.streamVersion(stream), on: connection).decode(Int64.self) {
            actual = version
        }
        throw EventStoreError.versionConflict(stream: stream, expected: expectedVersion, actual: actual)
    }

    /// Runs `query` on `connection` (inside a transaction), or on any pooled connection.
    private func query(_ query: PostgresQuery, on connection: PostgresConnection?) async throws -> PostgresRowSequence {
        if let connection { return try await connection.query(query, logger: logger) }
        return try await client.query(query, logger: logger)
    }
}
