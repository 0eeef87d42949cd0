import Foundation
import Kappa
import Logging
import PostgresNIO

/// The event log in PostgreSQL: append-only (enforced by triggers), idempotent on event id,
/// read in one gap-free global order.
///
/// ```swift
/// let client = PostgresClient(configuration: …)
/// let store = try PostgresEventStore(client: client, logger: logger)
/// try await store.migrate()                        // creates or updates the schema
/// let result = try await store.append(events, to: "cart-1", expectedVersion: .noStream)
/// for try await batch in store.logEvents(after: .start) { … }
/// ```
/// The client must be running (`client.run()` in a task or a service group).
public struct PostgresEventStore: EventStore {
    /// Where and how the log is stored.
    public struct Configuration: Sendable {
        /// The schema that holds the log's tables. Default `kappa`.
        /// 1…63 lower-case ASCII letters, digits and `_`.
        public var schema = "kappa"
        /// How often an `.any` append retries when a concurrent append took the same stream version. Default 5.
        public var anyVersionRetries = 5
        /// Whether appends, and followers' reads of the log (``readLog(after:limit:)``), run as
        /// prepared statements, parsed and planned once per connection (about a third more appends
        /// per second at 32 writers here; ~0.2 ms of server time saved per page read). Turn it off
        /// behind a connection pooler that cannot keep statements prepared (PgBouncer in transaction
        /// mode before 1.21) — with the projection runtime's own setting of the same name; appends
        /// then call the log's PL/pgSQL functions instead. Default `true`.
        public var preparedStatements = true
        /// How long a ``PostgresEventStore/withTransaction(_:)`` transaction may sit idle — its body
        /// awaiting something other than the database — before the server ends its session and rolls
        /// it back (`idle_in_transaction_session_timeout`, set at its start; one round trip more). An
        /// append transaction left open holds back every follower of the log, so it is bounded.
        /// `nil`: no bound of Kappa's (the server's or role's setting holds). Default 60 s.
        public var transactionIdleTimeout: Duration? = .seconds(60)
        /// Whether appends that arrive while ``appendsInFlight`` are in flight wait and go next
        /// together, as one statement and one transaction (group commit), each with its own
        /// promises: its events commit together or not at all, and an expectation that does not
        /// hold fails it alone. A lone writer never waits. Needs ``preparedStatements``. Default `true`.
        public var groupsConcurrentAppends = true
        /// How many appends (alone or groups) the store sends at once with
        /// ``groupsConcurrentAppends``; appends that arrive meanwhile wait for the next group. One
        /// makes the largest groups, the fewest commits: 8 writers appended 96–99 % of pgbench's
        /// rate into the log's table with 1, 72–73 % with 2 (libpq append connections, see
        /// Benchmarks/README.md). An append that waits on a lock holds the next group back with it.
        /// At least 1. Default 1.
        public var appendsInFlight = 1
        /// Connections the store keeps leased from the client's pool for its appends while it runs
        /// (``PostgresEventStore/run()``), so that an append need not lease one: 60–100 µs less of
        /// the client's CPU an append here. Two: one for group commit's append in flight, one for an
        /// append that goes beside it (one carrying the log's notification, or of more than 16
        /// events); an append that finds none idle leases from the pool. Held connections serve nothing else:
        /// keep the client's `maximumConnections` above this. 0: none held. Default 2.
        public var heldAppendConnections = 2
        /// How often a held append connection that sat idle is checked with `SELECT 1`; one that
        /// fails, or does not answer within 10 s, is closed and replaced (the pool checks only the
        /// connections it has idle). Default 30 s.
        public var heldConnectionCheckInterval: Duration = .seconds(30)
        /// The log's database for libpq (`host=… dbname=…` or a `postgresql://` URL; the `PG*`
        /// environment variables fill in what it leaves out, as for `psql`). When set, the running
        /// store (``PostgresEventStore/run()``) also holds ``heldAppendConnections`` libpq
        /// connections, each with the appends prepared, and an append — alone or a group — goes
        /// through an idle one: its statement sent from the appending task, its answer read by one
        /// thread for the process. That spends about half the client CPU of a held postgres-nio
        /// connection an append (see Benchmarks/README.md). The live page reads of this process's
        /// projection runners go through an idle one too (the page in binary): about 100 µs less
        /// a read than through `client` on the development machine. Appends in
        /// ``PostgresEventStore/withTransaction(_:)``, and every other read, stay on `client`; so
        /// does an append or page read that finds no libpq connection idle. Use the same role and
        /// database as `client`'s (TLS: `sslmode=verify-full`). Default `nil`: every append and
        /// read through `client`.
        public var appendConnectionString: String?

        /// The log in `schema`, every other value at its default.
        public init(schema: String = "kappa") {
            self.schema = schema
        }
    }

    /// The client of the database that holds the log; it must be running.
    public let client: PostgresClient
    /// Where and how the log is stored.
    public let configuration: Configuration
    let schema: SQLIdentifier
    let queries: EventLogQueries
    let logger: Logger
    /// Rung after every append, to wake followers; see ``LogNotifier``.
    public let notifier: LogNotifier?
    /// Concurrent appends waiting to go together (shared by copies of the store).
    package let appendGroups: AppendGroups
    /// Connections held for appends while the store runs (shared by copies of the store).
    package let heldConnections: HeldConnections
    /// libpq connections held for appends while the store runs (``Configuration/appendConnectionString``).
    package let libpqConnections = HeldLibPQConnections()

    /// - Parameters:
    ///   - client: The client of the database that holds the log; it must be running.
    ///   - configuration: Where and how the log is stored (defaults documented on ``Configuration``).
    ///   - notifier: Rung after every append so projections wake at once; `nil` leaves them to poll.
    ///   - logger: Where the store logs (`kappa.*` metadata).
    /// - Throws: ``KappaPostgresError/Code/invalidIdentifier`` when the schema name is not safe.
    public init(client: PostgresClient, configuration: Configuration = .init(), notifier: LogNotifier? = nil, logger: Logger) throws {
        self.client = client
        self.notifier = notifier
        self.configuration = configuration
        self.schema = try SQLIdentifier(configuration.schema, role: "schema")
        self.queries = EventLogQueries(schema: schema)
        self.heldConnections = HeldConnections(pingInterval: configuration.heldConnectionCheckInterval)
        self.appendGroups = AppendGroups(limit: max(1, configuration.appendsInFlight))
        var logger = logger
        logger[metadataKey: "kappa.schema"] = "\(configuration.schema)"
        self.logger = logger
    }

    /// Creates or updates the log's tables (the embedded `Migrations/*.sql`), under an advisory lock.
    /// - Returns: The migrations applied by this call.
    @discardableResult
    public func migrate() async throws -> [Migration] {
        try await refuseAReadOnlyServer()
        let applied = try await Migrator(client: client, schema: configuration.schema, logger: logger).migrate(Migration.eventLog)
        try await repairOrder()
        return applied
    }

    /// Refuses a server whose sessions cannot write — a standby given as the log's URL, or a role or
    /// database set to `default_transaction_read_only` — naming it, before anything is tried there.
    private func refuseAReadOnlyServer() async throws {
        let row = try await rows(queries.server(), resending: true) { try $0.decode((String, String, Int32, Bool, Bool).self) }.first
        guard let (database, host, port, readOnly, standby) = row, readOnly else { return }
        throw KappaPostgresError(
            .invalidConfiguration,
            message: """
                the log's server (\(host):\(port), database \(database)) is \(standby ? "a standby" : "read-only for this role"): \
                the log is appended to on its primary; give the primary's URL, or route to it with PrimaryRouter
                """)
    }

    /// Repairs the log's order after a restore, point-in-time recovery or failover from another server,
    /// when it holds order keys at or above the ones this server gives next (else changes nothing):
    /// raises the offset the log adds to transaction ids (Migrations/log/0007), so that every event
    /// appended from now on comes after every stored one. Safe to run from several processes at once:
    /// they repair once. ``migrate()`` runs it, and so does an append that meets an unrepaired log.
    /// - Returns: What was added to the order keys; 0 when nothing needed repair.
    @discardableResult
    public func repairOrder() async throws -> Int64 {
        // Safe to send twice: a second run finds nothing to repair.
        let shift = try await rows(queries.repairOrder(), resending: true) { row in try row.decode(Int64.self) }.first ?? 0
        if shift > 0 {
            logger.warning(
                "repaired the log's order: it held transaction ids beyond this server's (restored or failed over)",
                metadata: ["kappa.schema": "\(configuration.schema)", "kappa.order_shift": "\(shift)"])
        }
        return shift
    }

    /// Up to `limit` events of `stream` with versions from `version` on, in version order.
    /// - Throws: `EventStoreError`, with code `EventStoreError.Code.connectionLost` when the connection drops.
    public func readStream(_ stream: StreamID, from version: Int64, limit: Int) async throws -> [RecordedEvent] {
        try await read(queries.readStream(stream, from: version, limit: limit), stream: stream)
    }

    /// Up to `limit` events of the whole log after `position`, in its global order, below its horizon
    /// (from transactions older than every one still open that may append to it, as ``head()``);
    /// read as one packed page, by a prepared statement unless ``Configuration/preparedStatements`` is off.
    public func readLog(after position: LogPosition, limit: Int) async throws -> [RecordedEvent] {
        try await readLogPage(after: position, limit: limit, refined: true).events
    }

    /// A page of the log after `position`, and whether committed events wait beyond the gap-free
    /// horizon (held back by an older transaction still open: a follower should look again soon,
    /// since the commit that releases them may ring no doorbell). `true` when not known.
    package func readLogPage(after position: LogPosition, limit: Int, refined: Bool = false) async throws -> (events: [RecordedEvent], heldBack: Bool) {
        // (The row-by-row query is built only if the server cannot pack the page.)
        guard configuration.preparedStatements else {
            return try await readPage(
                queries.readLog(after: position, limit: limit, packed: true, refined: refined),
                rows: queries.readLog(after: position, limit: limit, packed: false, refined: refined), heldBack: true)
        }
        let text = refined ? queries.readPageRefined : queries.readPage, statement = ReadPageStatement(after: position, limit: Int32(clamping: limit)),
            logger = self.logger
        if let page = try await statement.read(as: text, on: libpqConnections) { return page }
        return try await readPage(rows: queries.readLog(after: position, limit: limit, packed: false, refined: refined), heldBack: true) { connection in
            try await connection.executeAll(statement, as: text, logger: logger).last // one row
        }
    }

    /// The log after `position` and up to `target` (a position once below the horizon), in its
    /// order, for a bulk rebuild in one partition.
    package func readLog(after position: LogPosition, through target: LogPosition, limit: Int) async throws -> [RecordedEvent] {
        try await readPage(
            queries.readLog(after: position, through: target, limit: limit, packed: true),
            rows: queries.readLog(after: position, through: target, limit: limit, packed: false)
        ).events
    }

    /// How many events follow `position` (up to `target`, if given), counting no further than `limit`.
    package func countEvents(after position: LogPosition, through target: LogPosition? = nil, limit: Int = Int(Int32.max)) async throws -> Int {
        let query = queries.count(after: position, through: target, limit: limit), logger = self.logger
        do {
            return try await onGuarded(nil, stream: nil, resending: true) { connection in
                try await connection.allRows(query, logger: logger) { try $0.decode(Int64.self) }.last.map { Int($0) } ?? 0
            }
        } catch let error as PSQLError {
            throw Self.translate(error, stream: nil)
        }
    }

    /// The position of the last event a reader can be handed now (`LogPosition.start` for an empty log).
    public func head() async throws -> LogPosition {
        let query = queries.head(), logger = self.logger
        do {
            // Every row read to the end (an abandoned row stream can keep its pooled connection busy,
            // and the next query on it waits forever), under the guard.
            let rows = try await onGuarded(nil, stream: nil, resending: true) { connection in
                try await connection.allRows(query, logger: logger) { try $0.decode((Int64, Int64).self) }
            }
            return rows.last.map { LogPosition(transactionID: UInt64($0.0), globalPosition: $0.1) } ?? .start
        } catch let error as PSQLError {
            throw Self.translate(error, stream: nil)
        }
    }

    /// The stored event with id `id`, if any.
    public func event(id: UUID) async throws -> RecordedEvent? {
        try await read(queries.eventByID(id), stream: nil).first
    }

    /// A page of the log read as one packed cell (``EventPage``); row by row when the page is too
    /// large for one `bytea` (SQLSTATE 54000: over 1 GB).
    func readPage(_ packed: PostgresQuery, rows: @autoclosure () -> PostgresQuery, heldBack: Bool = false) async throws -> (
        events: [RecordedEvent], heldBack: Bool
    ) {
        let logger = self.logger
        return try await readPage(rows: rows(), heldBack: heldBack) { connection in
            var found: PostgresRow?
            for try await row in try await connection.query(packed, logger: logger) { found = row } // one row; read to the end
            return found
        }
    }

    /// A packed page as `fetch` reads it (its row: count, page and — with `heldBack` — whether events
    /// are held back), or read row by row with `rows` when the server cannot pack it.
    private func readPage(
        rows: @autoclosure () -> PostgresQuery, heldBack expectsHeldBack: Bool,
        fetch: @escaping @Sendable (PostgresConnection) async throws -> PostgresRow?
    ) async throws -> (events: [RecordedEvent], heldBack: Bool) {
        let cells: (count: PostgresCell, page: PostgresCell, heldBack: PostgresCell?)?
        let logger = self.logger
        do {
            cells = try await onGuarded(nil, stream: nil, resending: true) { connection in
                guard let row = try await fetch(connection) else { return nil }
                var iterator = row.makeIterator()
                guard let count = iterator.next(), let page = iterator.next() else { return nil }
                return (count, page, iterator.next())
            }
        } catch let error as PSQLError where error.sqlState == .programLimitExceeded {
            logger.notice(
                "a page of the log is too large to send packed; reading it row by row",
                metadata: ["kappa.error": "\(String(reflecting: error))"])
            return (try await read(rows(), stream: nil), true)
        } catch let error as PSQLError {
            throw Self.translate(error, stream: nil)
        }
        guard let cells, cells.page.dataType == .bytea, let count = try? cells.count.decode(Int32.self) else {
            throw EventCells.malformed("page")
        }
        var heldBack = true
        if expectsHeldBack {
            guard let cell = cells.heldBack, let value = try? cell.decode(Bool.self) else { throw EventCells.malformed("page") }
            heldBack = value
        }
        guard let page = cells.page.bytes else { return ([], heldBack) } // NULL: no events
        return (try EventPage.decode(page, count: Int(count)), heldBack)
    }

    func read(_ query: PostgresQuery, stream: StreamID?) async throws -> [RecordedEvent] {
        let logger = self.logger
        do {
            return try await onGuarded(nil, stream: stream, resending: true) { connection in
                var events: [RecordedEvent] = []
                for try await row in try await connection.query(query, logger: logger) {
                    events.append(try EventLogQueries.decodeEvent(row))
                }
                return events
            }
        } catch let error as PSQLError {
            throw Self.translate(error, stream: stream)
        }
    }

    /// The rows of `query` on a pooled connection, guarded, with driver errors as `EventStoreError`s.
    /// - Parameter resending: Sent again if the pool handed it a connection that had just closed (for
    ///   reads and statements safe to run twice).
    func rows<Row: Sendable>(_ query: PostgresQuery, resending: Bool, _ decode: @escaping @Sendable (PostgresRow) throws -> Row) async throws -> [Row] {
        do {
            return try await client.guardedRows(query, logger: logger, resending: resending, decode)
        } catch let error as PSQLError {
            throw Self.translate(error, stream: nil)
        } catch is ConnectionClosed {
            throw Self.connectionLost(stream: nil, detail: "the connection closed under the query")
        }
    }

    /// Runs `work` on `connection`, or on a pooled one, under the ``ConnectionGuard``: a connection
    /// that closes under it fails it with `EventStoreError.Code.connectionLost` instead of never answering.
    /// - Parameter resending: `work` only reads; on a pooled connection that is lost under it (the
    ///   pool can hand out one the server has just closed), it runs again on another, after the
    ///   pauses of ``resendPauses``.
    /// - Parameter held: An append: run it on a connection the store holds, if one is idle (``run()``).
    func onGuarded<R: Sendable>(
        _ connection: PostgresConnection?, stream: StreamID?, resending: Bool = false, held: Bool = false,
        _ work: @escaping @Sendable (PostgresConnection) async throws -> R
    ) async throws -> R {
        @Sendable func guarded(_ connection: PostgresConnection) async throws -> R {
            try await ConnectionGuard.shared.run(on: connection) { try await work(connection) }
        }
        var attempt = 1
        while true {
            do {
                if let connection { return try await guarded(connection) }
                if held, let borrowed = heldConnections.borrow() {
                    defer { heldConnections.giveBack(borrowed) }
                    return try await guarded(borrowed)
                }
                return try await client.withConnection(guarded)
            } catch  where resending && connection == nil && attempt <= resendPauses.count && isConnectionLoss(error) {
                logger.debug("a read lost its connection; sending it again", metadata: ["error": "\(String(reflecting: error))"])
                try await Task.sleep(for: resendPauses[attempt - 1])
                attempt += 1
            } catch is ConnectionClosed {
                throw Self.connectionLost(stream: stream, detail: "the connection closed under the query")
            }
        }
    }
}
