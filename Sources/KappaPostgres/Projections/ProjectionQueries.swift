import Foundation
import Kappa
import PostgresNIO

/// Every statement the projection runtime sends to the read-model database. Values are bound
/// parameters; the only text put into SQL is the runtime's schema, validated and quoted.
struct ProjectionQueries: Sendable {
    let projections: String
    let deadLetters: String
    let reactors: String
    let status: String
    let partitions: String
    let switches: String
    /// The sequence of rebuild ids, as a `regclass` literal's text (bound as a parameter).
    let rebuildIDs: String
    let sentinels: String
    /// The runtimes sharing the schema (Migrations/projections/0007).
    let members: String
    /// The function a single-statement batch fails through when its lease is gone.
    let leaseLost: String
    /// The prepared checkpoint moves: projections and reactors, committing asynchronously or not.
    private let advances: [AdvanceKind: StatementText]

    private struct AdvanceKind: Hashable {
        let table: LeaseTable
        let asynchronousCommit: Bool
    }

    init(schema: SQLIdentifier) {
        partitions = "\(schema.quoted).rebuild_partitions"
        switches = "\(schema.quoted).switches"
        rebuildIDs = "\(schema.quoted).rebuild_ids"
        sentinels = "\(schema.quoted).rebuild_sentinels"
        members = "\(schema.quoted).runtime_members"
        leaseLost = "\(schema.quoted).lease_lost"
        projections = "\(schema.quoted).projections"
        deadLetters = "\(schema.quoted).dead_letters"
        reactors = "\(schema.quoted).reactors"
        status = "\(schema.quoted).projection_status"
        var advances: [AdvanceKind: StatementText] = [:]
        for table in [LeaseTable.projections, .reactors] {
            for asynchronousCommit in [false, true] {
                advances[AdvanceKind(table: table, asynchronousCommit: asynchronousCommit)] = AdvanceStatement.text(
                    table: table == .projections ? projections : reactors, kind: table == .projections ? "p" : "r",
                    schema: schema.name, asynchronousCommit: asynchronousCommit)
            }
        }
        self.advances = advances
    }

    /// The prepared form of ``advanceCheckpoint(_:_:asynchronousCommit:)``.
    func advanceStatement(_ table: LeaseTable, asynchronousCommit: Bool) -> StatementText {
        advances[AdvanceKind(table: table, asynchronousCommit: asynchronousCommit)]!
    }

    func isRegistered(_ id: ProjectionID) -> PostgresQuery {
        "SELECT count(*) FROM \(unescaped: projections) WHERE name = \(id.name) AND version = \(id.version)"
    }

    /// The version's tables, each as a qualified, quoted name (from the catalog's own names).
    func versionTables(_ id: ProjectionID) -> PostgresQuery {
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = \(id.schema.name) ORDER BY tablename"
    }

    /// Whether the version's schema and the projection's stable-names schema exist, and how many
    /// versions of the projection are registered.
    func schemaOwnership(_ id: ProjectionID) -> PostgresQuery {
        """
        SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = \(id.schema.name)),
               EXISTS (SELECT FROM pg_namespace WHERE nspname = \(id.serving.name)),
               (SELECT count(*) FROM \(unescaped: projections) WHERE name = \(id.name))
        """
    }

    func register(_ id: ProjectionID) -> PostgresQuery {
        "INSERT INTO \(unescaped: projections) (name, version) VALUES (\(id.name), \(id.version)) ON CONFLICT DO NOTHING"
    }

    /// Takes the lease when it is free, expired, or already ours; the token goes up when it changes hands.
    /// Returns no row when another owner holds it.
    /// Takes the lease when it is free, expired, or held by this runtime instance (`holder`) — a
    /// runner taking it again after a fault. Every acquisition raises the token, so a batch of an
    /// earlier holding, even this instance's, can no longer move the checkpoint.
    func acquireLease(_ table: LeaseTable, _ key: LeaseKey, owner: String, holder: String, milliseconds: Int64, allowDropped: Bool = false) -> PostgresQuery {
        """
        UPDATE \(unescaped: table.name(in: self)) SET
            lease_token = lease_token + 1,
            lease_owner = \(owner),
            lease_holder = \(holder),
            lease_expires_at = clock_timestamp() + \(milliseconds) * interval '1 millisecond'
        WHERE name = \(key.name) AND version = \(key.version)
          AND (lease_owner IS NULL OR lease_holder = \(holder) OR lease_expires_at < now())
          \(unescaped: table == .projections && !allowDropped ? "AND lifecycle <> 'dropped'" : "")
        RETURNING lease_token, checkpoint_xid::text::int8, checkpoint_position
        """
    }

    /// Keeps a held lease alive and records the state. No row: the lease was lost.
    func renewLease(_ table: LeaseTable, _ key: LeaseKey, owner: String, token: Int64, milliseconds: Int64, state: ProjectionStatus.State) -> PostgresQuery {
        """
        UPDATE \(unescaped: table.name(in: self)) SET
            lease_expires_at = clock_timestamp() + \(milliseconds) * interval '1 millisecond',
            state = CASE WHEN state = 'failed' THEN state ELSE \(state.rawValue) END, updated_at = now()
        WHERE name = \(key.name) AND version = \(key.version) AND lease_owner = \(owner) AND lease_token = \(token)
        RETURNING 1
        """
    }

    func releaseLease(_ table: LeaseTable, _ key: LeaseKey, owner: String, token: Int64) -> PostgresQuery {
        """
        UPDATE \(unescaped: table.name(in: self)) SET lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE name = \(key.name) AND version = \(key.version) AND lease_owner = \(owner) AND lease_token = \(token)
        """
    }

    /// Moves the checkpoint, only while the lease's token is still ours (fencing) and the checkpoint
    /// is still where the batch began (the move's `start`: a batch whose COMMIT the server ran after the runtime
    /// gave up on it moved it already). Runs in the transaction of the read-model writes it covers.
    /// No row: the lease was lost or the checkpoint moved; roll back and take the lease again.
    /// With `asynchronousCommit`, the transaction then commits without waiting for the disk (set
    /// here, in the batch's last statement, rather than by a `SET LOCAL` round trip of its own).
    func advanceCheckpoint(_ table: LeaseTable, _ move: AdvanceStatement, asynchronousCommit: Bool) -> PostgresQuery {
        var binds = PostgresBindings(capacity: 11)
        move.append(to: &binds)
        return PostgresQuery(unsafeSQL: AdvanceStatement.update(table: table.name(in: self), asynchronousCommit: asynchronousCommit), binds: binds)
    }

    /// A live batch of a ``SingleStatementProjection`` as one statement (its own transaction): the
    /// projection's `writes` as a data-modifying `WITH` query, beside the fenced checkpoint `move` of
    /// ``advanceCheckpoint(_:_:asynchronousCommit:)``. When the move finds no row (the lease is gone,
    /// or the checkpoint is no longer where the batch began) the statement fails through
    /// `lease_lost()` (SQLSTATE KL001), so the writes never commit either.
    ///
    /// The start check matters here: a statement the runtime gave up on (its watchdog closed the
    /// connection) still commits if the server runs it to the end, and the batch retried meanwhile
    /// under the same lease must not be applied again.
    func singleStatementBatch(_ writes: PostgresQuery, _ move: AdvanceStatement, asynchronousCommit: Bool) -> PostgresQuery {
        // The writes' parameters come first, as they are; the move's are numbered after them.
        var binds = writes.binds
        let first = binds.count + 1
        move.append(to: &binds)
        let (name, version) = ("$\(first + 5)", "$\(first + 6)") // the move's own parameters
        let sql = """
            WITH kappa_writes AS (
            \(writes.sql)
            ), kappa_checkpoint AS (
            \(AdvanceStatement.update(table: projections, asynchronousCommit: asynchronousCommit, first: first))
            )
            SELECT CASE WHEN EXISTS (SELECT FROM kappa_checkpoint) THEN 'moved' ELSE \(leaseLost)(\(name), \(version)) END
            """
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    /// The fenced checkpoint `move` of ``advanceCheckpoint(_:_:asynchronousCommit:)`` as a statement
    /// that fails when it finds no row (``failing(_:name:version:)``).
    func failingAdvance(_ move: AdvanceStatement, asynchronousCommit: Bool) -> PostgresQuery {
        failing(advanceCheckpoint(.projections, move, asynchronousCommit: asynchronousCommit), name: move.key.name, version: move.key.version)
    }

    /// `move` (a fenced `UPDATE … RETURNING` of a checkpoint) as a statement that fails through
    /// `lease_lost()` (SQLSTATE KL001) when it finds no row: the last statement of a pipelined batch
    /// before its `COMMIT`, which the server then skips, so the batch's writes roll back.
    func failing(_ move: PostgresQuery, name: String, version: Int) -> PostgresQuery {
        var binds = move.binds
        binds.append(name)
        binds.append(Int32(version))
        let sql = """
            WITH kappa_checkpoint AS (
            \(move.sql)
            )
            SELECT CASE WHEN EXISTS (SELECT FROM kappa_checkpoint) THEN 'moved' ELSE \(leaseLost)($\(binds.count - 1), $\(binds.count)) END
            """
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    /// A `RETURNING` list for a checkpoint's statement: with `asynchronous`, it also makes the
    /// transaction commit without waiting for the disk (a local setting, evaluated once per moved row).
    static func commitMode(asynchronous: Bool) -> String {
        asynchronous ? "set_config('synchronous_commit', 'off', true)" : "1"
    }

    /// A version stopped by `error`: on a poison `event`, or with none (its `indexSQL` failed as it caught up).
    func markFailed(_ id: ProjectionID, owner: String, token: Int64, event: RecordedEvent?, error: String) -> PostgresQuery {
        """
        UPDATE \(unescaped: projections) SET state = 'failed', failed_position = \(event?.position.globalPosition),
            failed_event_id = \(event?.id), failed_event_type = \(event?.eventType), failed_error = \(error), updated_at = now()
        WHERE name = \(id.name) AND version = \(id.version) AND lease_owner = \(owner) AND lease_token = \(token)
        """
    }

    func clearFailure(_ id: ProjectionID) -> PostgresQuery {
        """
        UPDATE \(unescaped: projections) SET state = 'catching_up', failed_position = NULL, failed_event_id = NULL,
            failed_event_type = NULL, failed_error = NULL, updated_at = now()
        WHERE name = \(id.name) AND version = \(id.version) AND state = 'failed'
        """
    }

    func recordDeadLetter(_ id: ProjectionID, event: RecordedEvent, error: String) -> PostgresQuery {
        """
        INSERT INTO \(unescaped: deadLetters)
            (projection, version, event_id, stream_id, stream_version, event_type, transaction_id, position, error)
        VALUES (\(id.name), \(id.version), \(event.id), \(event.streamID.rawValue), \(event.streamVersion), \(event.eventType),
                \(String(event.position.transactionID))::xid8, \(event.position.globalPosition), \(error))
        ON CONFLICT (projection, version, event_id) DO UPDATE
            SET error = excluded.error, attempts = dead_letters.attempts + 1, recorded_at = now(), resolved_at = NULL
        """
    }

    func unresolvedDeadLetters(_ id: ProjectionID) -> PostgresQuery {
        "SELECT event_id FROM \(unescaped: deadLetters) WHERE projection = \(id.name) AND version = \(id.version) AND resolved_at IS NULL ORDER BY transaction_id, position"
    }

    /// Marks a dead letter resolved unless it is already: one row back when this call resolved it.
    /// The fence of a dead-letter retry: locks the version's row, in the retry's transaction, unless
    /// another runtime instance holds its lease (no row then). The lock orders the retry with this
    /// instance's own runner, whose checkpoint move waits for it.
    func fenceDeadLetterRetry(_ id: ProjectionID, holder: String) -> PostgresQuery {
        """
        SELECT 1 FROM \(unescaped: projections)
        WHERE name = \(id.name) AND version = \(id.version)
          AND (lease_owner IS NULL OR lease_expires_at < now() OR lease_holder = \(holder))
        FOR UPDATE
        """
    }

    func resolveDeadLetter(_ id: ProjectionID, eventID: UUID) -> PostgresQuery {
        """
        UPDATE \(unescaped: deadLetters) SET resolved_at = now()
        WHERE projection = \(id.name) AND version = \(id.version) AND event_id = \(eventID) AND resolved_at IS NULL
        RETURNING 1
        """
    }

    func checkpoint(_ id: ProjectionID) -> PostgresQuery {
        "SELECT checkpoint_xid::text::int8, checkpoint_position, state FROM \(unescaped: projections) WHERE name = \(id.name) AND version = \(id.version)"
    }

    func registerReactor(_ name: String, start: LogPosition) -> PostgresQuery {
        """
        INSERT INTO \(unescaped: reactors) (name, checkpoint_xid, checkpoint_position)
        VALUES (\(name), \(String(start.transactionID))::xid8, \(start.globalPosition)) ON CONFLICT DO NOTHING
        """
    }

    /// A row of ``statusRows()``.
    struct StatusRow: Sendable {
        var name: String
        var version: Int
        var state: ProjectionStatus.State
        var checkpoint: LogPosition
        var eventsApplied: Int64
        var leaseOwner: String?
        var deadLetters: Int64
        var failedPosition: Int64?
        var failedEventType: String?
        var failedError: String?

        init(_ row: PostgresRow) throws {
            let (name, version, state, transaction, position, applied, owner, deadLetters, failedPosition, failedType, failedError) = try row.decode(
                (String, Int32, String, Int64, Int64, Int64, String?, Int64, Int64?, String?, String?).self)
            (self.name, self.version, self.state) = (name, Int(version), ProjectionStatus.State(rawValue: state) ?? .stopped)
            self.checkpoint = LogPosition(transactionID: UInt64(transaction), globalPosition: position)
            (eventsApplied, leaseOwner, self.deadLetters) = (applied, owner, deadLetters)
            (self.failedPosition, failedEventType, self.failedError) = (failedPosition, failedType, failedError)
        }
    }

    func statusRows() -> PostgresQuery {
        """
        SELECT p.name, p.version, s.state, p.checkpoint_xid::text::int8, p.checkpoint_position, p.events_applied,
               p.lease_owner, s.dead_letters, p.failed_position, p.failed_event_type, p.failed_error
        FROM \(unescaped: projections) p JOIN \(unescaped: status) s USING (name, version)
        ORDER BY p.name, p.version
        """
    }
}

/// The two tables that hold leases and checkpoints.
enum LeaseTable: Sendable {
    case projections, reactors

    func name(in queries: ProjectionQueries) -> String {
        self == .projections ? queries.projections : queries.reactors
    }
}

/// The row a lease belongs to: a projection version, or a reactor (version 0).
struct LeaseKey: Hashable, Sendable {
    let name: String
    let version: Int
}
