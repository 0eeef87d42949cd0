import Foundation
import Kappa
import Logging
import PostgresNIO

extension PostgresEventStore {
    /// Recomputes the log's hash chains (Migrations/log/0006_hash_chain.sql) here, independently of
    /// the server, and names every event whose stored hash no longer holds: the mark of history
    /// edited by a role that got past the log's triggers (its owner, a superuser).
    ///
    /// Each event's stored hash must be SHA-256 of these bytes, and its predecessor must be there:
    /// - the stream version, 8 bytes big-endian;
    /// - the predecessor's stored hash, 32 bytes (none for version 1);
    /// - the event id, its 16 bytes in order; the schema version, 4 bytes big-endian;
    /// - `recorded_at`, 8 bytes big-endian: microseconds since 2000-01-01 00:00:00 UTC;
    /// - the stream id, event type, payload and metadata, each as its UTF-8 byte count (4 bytes
    ///   big-endian) and its bytes; payload and metadata are the JSON text as stored, byte for byte.
    ///
    /// An edited event is named itself; a deleted one by the event after it. What the chain cannot show:
    /// the last events of a stream deleted, or a stream's chain recomputed from the edit on — keep a
    /// stream's last hash elsewhere to catch those.
    ///
    /// Reads the events page by page in (stream, version) order along the unique index, each page
    /// after the last one's key, so memory stays bounded and no transaction stays open; events
    /// appended meanwhile to streams not yet reached are checked too. Any role that may read the log
    /// may verify it.
    ///
    /// - Parameters:
    ///   - stream: Only this stream; `nil` for the whole log.
    ///   - pageSize: Events a page. Default 2,000.
    ///   - progress: Called after each page.
    /// - Returns: The counts and the breaks found (``ChainVerification/firstBreak`` is the first).
    /// - Throws: `EventStoreError`: `.database` when the log has no chains yet (migrate it), or the
    ///   server refused; `.connectionLost`; `.invalidArgument` when a stored row is not what the log
    ///   stores. `CancellationError` between pages when the task is cancelled.
    public func verifyChains(
        stream: StreamID? = nil, pageSize: Int = 2_000, progress: (@Sendable (ChainVerification.Progress) -> Void)? = nil
    ) async throws -> ChainVerification {
        guard pageSize > 0 else { throw EventStoreError(.invalidArgument, message: "a page holds at least one event") }
        var logger = self.logger
        if let stream { logger[metadataKey: "kappa.stream"] = "\(stream.rawValue)" }
        let clock = ContinuousClock(), started = clock.now
        logger.info("verifying the log's hash chains")
        let estimate = try await chainQuery(queries.chainEventsEstimate(stream: stream), stream: stream) { rows in
            try rows.last?.decode(Int64.self) ?? 0
        }
        var verifier = ChainVerifier()
        var after: (stream: String, version: Int64) = (stream?.rawValue ?? "", 0)
        while true {
            try Task.checkCancellation()
            let page = try await chainQuery(queries.chainPage(after: after, only: stream, limit: pageSize), stream: stream) { rows in
                try rows.map(ChainedEvent.init(row:))
            }
            for event in page {
                // Logged as the result keeps them: the first ones.
                if let found = verifier.check(event), verifier.breakCount <= ChainVerification.keptBreaks {
                    logger.warning(
                        "hash chain broken",
                        metadata: [
                            "kappa.stream": "\(found.stream)", "kappa.version": "\(found.version)", "kappa.position": "\(found.position)",
                            "kappa.event_id": "\(found.eventID)", "kappa.reason": "\(found.reason)",
                        ])
                }
            }
            progress?(
                .init(
                    eventsChecked: verifier.eventsChecked, streamsChecked: verifier.streamsChecked, breakCount: verifier.breakCount,
                    estimatedEvents: max(Int(estimate), verifier.eventsChecked), elapsed: clock.now - started))
            guard page.count == pageSize, let last = page.last else { break }
            after = (last.stream, last.version)
        }
        let result = ChainVerification(
            eventsChecked: verifier.eventsChecked, streamsChecked: verifier.streamsChecked,
            breaks: verifier.breaks, breakCount: verifier.breakCount, elapsed: clock.now - started)
        logger.info(
            "verified the log's hash chains",
            metadata: [
                "kappa.events": "\(result.eventsChecked)", "kappa.streams": "\(result.streamsChecked)", "kappa.breaks": "\(result.breakCount)",
            ])
        return result
    }

    /// Runs a query of the verification under the guard and hands `decode` all its rows; a log
    /// without chains (SQLSTATE 42703, no `event_hash`) is told as such.
    private func chainQuery<R: Sendable>(
        _ query: PostgresQuery, stream: StreamID?, _ decode: @escaping @Sendable ([PostgresRow]) throws -> R
    ) async throws -> R {
        let logger = self.logger
        do {
            return try await onGuarded(nil, stream: stream) { connection in
                try decode(try await connection.allRows(query, logger: logger) { $0 })
            }
        } catch let error as PSQLError where error.sqlState == .undefinedColumn {
            throw EventStoreError(
                .database, stream: stream?.rawValue,
                message: "the event log in schema \(configuration.schema) has no hash chains yet; run PostgresEventStore.migrate() first",
                underlying: DriverError(error))
        } catch let error as PSQLError {
            throw Self.translate(error, stream: stream)
        }
    }
}

extension EventLogQueries {
    /// The columns ``ChainedEvent/init(row:)`` reads, each in its type's binary form.
    static let chainColumns = """
        position, transaction_id, stream_id, stream_version, event_id, event_type, schema_version, recorded_at, payload, metadata, event_hash
        """

    /// Up to `limit` events after `after` in (stream, version) order — of stream `only`, when given —
    /// along the unique index on (stream_id, stream_version).
    func chainPage(after: (stream: String, version: Int64), only stream: StreamID?, limit: Int) -> PostgresQuery {
        if let stream {
            return """
                SELECT \(unescaped: Self.chainColumns) FROM \(unescaped: events)
                WHERE stream_id = \(stream.rawValue) AND stream_version > \(after.version)
                ORDER BY stream_version LIMIT \(limit)
                """
        }
        return """
            SELECT \(unescaped: Self.chainColumns) FROM \(unescaped: events)
            WHERE (stream_id, stream_version) > (\(after.stream), \(after.version))
            ORDER BY stream_id, stream_version LIMIT \(limit)
            """
    }

    /// How many events a verification will read: a stream's count, or the table's estimate (from
    /// its statistics, so as not to read a large log twice; counted when it has none).
    func chainEventsEstimate(stream: StreamID?) -> PostgresQuery {
        if let stream {
            return "SELECT count(*) FROM \(unescaped: events) WHERE stream_id = \(stream.rawValue)"
        }
        return """
            SELECT CASE WHEN c.reltuples > 0 THEN c.reltuples::int8 ELSE (SELECT count(*) FROM \(unescaped: events)) END
            FROM pg_class c WHERE c.oid = \(events)::regclass
            """
    }
}
