import Foundation
import Kappa
import Logging
import PostgresNIO

extension PostgresEventStore {
    /// Appends `events` to `stream` in one statement if it is at `expectedVersion`, with the promises and
    /// errors of `EventStore.append(_:to:expectedVersion:)`, then rings the ``notifier`` unless nothing
    /// was written. An `.any` append that loses a race for a stream version is retried, up to
    /// ``Configuration/anyVersionRetries`` times. An append to a log restored or failed over from another
    /// server, whose order needs repair, runs ``repairOrder()`` and is sent again.
    public func append(_ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion) async throws -> AppendResult {
        var request = try appendRequest(events, to: stream, expectedVersion: expectedVersion)
        // Carried in the append's own transaction when the notifier is idle (prepared statements only).
        var carries = configuration.preparedStatements && notifier?.claimNotification() == true
        if carries, let notifier { request.statement.notification = (notifier.channel, notifier.id) }
        let claimed = ContinuousClock.now
        var (attempt, repaired) = (0, false)
        while true {
            attempt += 1
            do {
                let result: AppendResult
                do {
                    result = try await self.append(request, on: nil)
                } catch {
                    // Handed back to the notifier's loop: a retry goes without it.
                    if carries { notifier?.notificationNotCarried() }
                    carries = false
                    request.statement.notification = nil
                    throw error
                }
                if !result.wasAlreadyAppended {
                    notifier?.appended(carried: carries, took: .now - claimed)
                } else if carries {
                    notifier?.notificationNotCarried()
                }
                return result
            } catch let error as EventStoreError
                where error.code == .versionConflict && expectedVersion == .any
                && attempt <= configuration.anyVersionRetries
            {
                continue
            } catch let error as EventStoreError where error.code == .orderNeedsRepair && !repaired {
                // Nothing was written: repaired once, then sent again.
                repaired = true
                try await repairOrder()
            }
        }
    }

    /// Runs `body` in one transaction whose appends commit or roll back together. Left idle longer
    /// than ``Configuration/transactionIdleTimeout``, it is ended by the server: its commit then fails
    /// with `EventStoreError.Code.connectionLost` and nothing of it is written.
    /// An append in it to a log whose order needs repair (`EventStoreError.Code.orderNeedsRepair`)
    /// is not repaired here: run ``repairOrder()`` (or ``migrate()``) and the transaction again.
    /// Errors `body` throws come back unchanged, after the rollback.
    public func withTransaction<Result: Sendable>(_ body: (Transaction) async throws -> Result) async throws -> Result {
        // Not PostgresClient.withTransaction: its ROLLBACK on a connection the server has just
        // closed was seen never to end (see ConnectionGuard). Here each statement is guarded.
        // Zero would turn the bound off: at least 1 ms.
        let idleLimit = configuration.transactionIdleTimeout.map { String(max(1, $0.wholeMilliseconds)) }
        let result = try await client.withConnection { connection in
            try await inTransaction(on: connection, send: { try await transactionStatement($0, on: connection) }) {
                if let idleLimit {
                    try await transactionStatement("SELECT set_config('idle_in_transaction_session_timeout', \(idleLimit), true)", on: connection)
                }
                return try await body(Transaction(store: self, connection: connection))
            }
        }
        notifier?.appended()
        return result
    }

    private func transactionStatement(_ sql: PostgresQuery, on connection: PostgresConnection) async throws {
        let logger = self.logger
        do {
            try await onGuarded(connection, stream: nil) { connection in
                for try await _ in try await connection.query(sql, logger: logger) {}
            }
        } catch let error as PSQLError {
            throw Self.translate(error, stream: nil)
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
            let request = try store.appendRequest(events, to: stream, expectedVersion: expectedVersion)
            return try await store.append(request, on: connection, inTransaction: true)
        }
    }

    /// An append, validated and encoded: what ``append(_:on:inTransaction:)`` sends.
    struct AppendRequest: Sendable {
        var statement: AppendStatement
        let stream: StreamID
        let expectedVersion: ExpectedVersion
        var events: [NewEvent] { statement.events }
    }

    func appendRequest(_ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion) throws -> AppendRequest {
        guard !events.isEmpty else {
            throw EventStoreError(.invalidArgument, stream: stream.rawValue, message: "an append needs at least one event")
        }
        // What every reader must be able to read back, for good (see PayloadText).
        for event in events {
            if let problem = PayloadText.problem(event.payload) {
                throw EventStoreError(
                    .encodingFailed, stream: stream.rawValue, eventType: event.eventType.rawValue,
                    message: "the payload of event \(event.id) \(problem)")
            }
        }
        let metadata = try events.map { event -> String in
            if event.metadata == EventMetadata() { return "{}" }
            let encoded: Data
            do {
                encoded = try JSONEncoder().encode(event.metadata)
            } catch {
                throw EventStoreError(
                    .encodingFailed, stream: stream.rawValue, eventType: event.eventType.rawValue,
                    message: "cannot encode the metadata of event \(event.id): \(error)")
            }
            if let problem = PayloadText.problem(encoded) {
                throw EventStoreError(
                    .encodingFailed, stream: stream.rawValue, eventType: event.eventType.rawValue,
                    message: "the metadata of event \(event.id) \(problem)")
            }
            return String(decoding: encoded, as: UTF8.self)
        }
        let (mode, version): (String, Int64?) =
            switch expectedVersion {
            case .any: ("any", nil)
            case .streamExists: ("exists", nil)
            case .noStream: ("exact", 0)
            case .exact(let version): ("exact", version)
            }
        return AppendRequest(
            statement: AppendStatement(stream: stream.rawValue, events: events, metadata: metadata, mode: mode, expected: version),
            stream: stream, expectedVersion: expectedVersion)
    }

    func append(_ request: AppendRequest, on connection: PostgresConnection?, inTransaction: Bool = false) async throws -> AppendResult {
        let stream = request.stream, expectedVersion = request.expectedVersion
        var rows: [AppendStatement.Row] = []
        func rejected(_ translated: EventStoreError) async throws -> AppendResult {
            guard !inTransaction, translated.code == .versionConflict || translated.code == .duplicateEventID else {
                throw translated
            }
            return try await resolveRejected(request.events, to: stream, expectedVersion: expectedVersion, on: connection)
        }
        do {
            rows = try await appendRows(request, on: connection)
        } catch let error as PSQLError {
            return try await rejected(Self.translate(error, stream: stream))
        } catch let error as LibPQError {
            return try await rejected(Self.translate(error, stream: stream))
        }
        guard let last = rows.last else {
            // The expected version did not hold: nothing was written.
            if inTransaction {
                throw EventStoreError.versionConflict(stream: stream, expected: expectedVersion, actual: nil)
            }
            return try await resolveRejected(request.events, to: stream, expectedVersion: expectedVersion, on: connection)
        }
        return AppendResult(
            streamVersion: last.version,
            positions: rows.map { LogPosition(transactionID: $0.transaction, globalPosition: $0.position) })
    }

    /// Sends the append — prepared, or through the log's functions — and reads every row it returns
    /// (in insertion order: the positions increase).
    private func appendRows(_ request: AppendRequest, on connection: PostgresConnection?) async throws -> [AppendStatement.Row] {
        guard configuration.preparedStatements else {
            let statement = request.statement
            let query = queries.append(statement.events, metadata: statement.metadata, stream: request.stream, expected: request.expectedVersion)
            return try await self.rows(query, on: connection, stream: request.stream) { row in
                let (position, transaction, version) = try row.decode((Int64, Int64, Int64).self)
                return (position, UInt64(transaction), version)
            }
        }
        let queries = self.queries, logger = self.logger
        // Guarded (both ways): an append written to a connection that has just closed was seen never to end.
        let libpq = libpqConnections
        @Sendable func alone(_ statement: AppendStatement) async throws -> [AppendStatement.Row] {
            let text = queries.appends.text(events: statement.events.count, notifying: statement.notification != nil)
            // Through a held libpq connection when one is idle (Configuration.appendConnectionString).
            if connection == nil,
                let rows = try await libpq.withIdleConnection({
                    try await $0.execute(prepared: text.name, statement.libpqParameters, decode: AppendStatement.rows(of:))
                })
            {
                return rows
            }
            return try await onGuarded(connection, stream: request.stream, held: true) { connection in
                try await connection.executeAll(statement, as: text, logger: logger)
            }
        }
        // An append that carries the log's notification goes alone: the group statement sends none.
        guard connection == nil, configuration.groupsConcurrentAppends, request.statement.notification == nil,
            request.events.count <= AppendGroups.largestGrouped
        else {
            return try await alone(request.statement)
        }
        do {
            return try await appendGroups.rows(for: request.statement, alone: alone) { statements in
                let group = GroupAppendStatement(requests: statements)
                if let rows = try await libpq.withIdleConnection({
                    try await $0.execute(prepared: queries.groupAppend.name, group.libpqParameters, decode: GroupAppendStatement.rows(of:))
                }) {
                    return rows
                }
                return try await onGuarded(nil, stream: request.stream, held: true) { connection in
                    try await connection.executeAll(group, as: queries.groupAppend, logger: logger)
                }
            }
        } catch is AppendGroups.LeaderLostConnection {
            throw Self.connectionLost(stream: request.stream, detail: "the connection closed under the group of appends this one was sent in")
        }
    }

    /// Why an append wrote nothing: a repeat of an earlier append (return its result), a partial
    /// repeat (duplicate ids), or a version conflict. Nothing was written either way.
    private func resolveRejected(
        _ events: [NewEvent], to stream: StreamID, expectedVersion: ExpectedVersion, on connection: PostgresConnection?
    ) async throws -> AppendResult {
        let stored = try await rows(queries.eventsByID(events.map(\.id)), on: connection, stream: stream) { row in
            let (streamID, version, id, position, transaction) = try row.decode((String, Int64, UUID, Int64, Int64).self)
            return (stream: streamID, version: version, id: id, position: LogPosition(transactionID: UInt64(transaction), globalPosition: position))
        }
        if let first = stored.first {
            guard stored.count == events.count, stored.map(\.id) == events.map(\.id),
                stored.allSatisfy({ $0.stream == stream.rawValue })
            else {
                throw EventStoreError(
                    .duplicateEventID, stream: stream.rawValue,
                    message: "event id \(first.id) is already stored in stream '\(first.stream)' at version \(first.version); nothing was written")
            }
            return AppendResult(streamVersion: stored.last!.version, positions: stored.map(\.position), wasAlreadyAppended: true)
        }
        let actual = try await rows(queries.streamVersion(stream), on: connection, stream: stream) { try $0.decode(Int64.self) }.last
        throw EventStoreError.versionConflict(stream: stream, expected: expectedVersion, actual: actual)
    }

    /// Runs `query` on `connection` (inside a transaction), or on any pooled connection, under the
    /// ``ConnectionGuard`` (a connection that closes under it fails it with `.connectionLost`
    /// instead of never), and decodes every row.
    private func rows<Row: Sendable>(
        _ query: PostgresQuery, on connection: PostgresConnection?, stream: StreamID, _ decode: @escaping @Sendable (PostgresRow) throws -> Row
    ) async throws -> [Row] {
        let logger = self.logger
        return try await onGuarded(connection, stream: stream) { try await $0.allRows(query, logger: logger, decode) }
    }
}
