import Kappa
import PostgresNIO

/// The statements of versions, rebuilds and switches. Values are bound parameters; the only text
/// put into SQL is validated and quoted identifiers.
extension ProjectionQueries {
    /// Serialises every change of a projection's versions (switch, drop, reset), across processes.
    func lockVersions(_ name: String) -> PostgresQuery {
        "SELECT pg_advisory_xact_lock(hashtext('kappa.versions.' || \(name)))"
    }

    /// Every version of `name`: version, lifecycle, state, checkpoint, events applied, lease owner,
    /// rebuild target and partitions. `FOR UPDATE` when `locking`.
    func versions(_ name: String, locking: Bool = false) -> PostgresQuery {
        """
        SELECT version, lifecycle,
               -- As the status view reads it: a version whose lease nobody holds is stopped.
               CASE WHEN state <> 'failed' AND NOT coalesce(lease_expires_at > now(), false) THEN 'stopped' ELSE state END,
               checkpoint_xid::text::int8, checkpoint_position, events_applied,
               CASE WHEN lease_expires_at > now() THEN lease_owner END,
               rebuild_target_xid::text::int8, rebuild_target_position, rebuild_partitions
        FROM \(unescaped: projections) WHERE name = \(name) ORDER BY version \(unescaped: locking ? "FOR UPDATE" : "")
        """
    }

    func names() -> PostgresQuery {
        "SELECT DISTINCT name FROM \(unescaped: projections) ORDER BY name"
    }

    /// Where this server is (database, address, port), and whether `schema` has a migrations table:
    /// the first step of finding out whether the schema holds an event log.
    func migrationsTable(in schema: String) -> PostgresQuery {
        """
        SELECT current_database()::text, coalesce(host(inet_server_addr()), 'local socket'), coalesce(inet_server_port(), 0),
               to_regclass(\(SQLIdentifier.quote(catalogName: schema) + ".kappa_migrations")) IS NOT NULL
        """
    }

    /// How many of the migrations recorded in `schema` (validated) are the event log's `first`.
    func logMigrations(in schema: SQLIdentifier, first: String) -> PostgresQuery {
        "SELECT count(*) FROM \(unescaped: schema.quoted).kappa_migrations WHERE name = \(first)"
    }

    /// Starts a bulk rebuild up to `target`, in `count` partitions that all start at `from`, under a new rebuild id.
    func startRebuild(_ key: LeaseKey, owner: String, token: Int64, target: LogPosition, partitions count: Int, from: LogPosition) -> PostgresQuery {
        """
        WITH started AS (
            UPDATE \(unescaped: projections) SET rebuild_target_xid = \(String(target.transactionID))::xid8,
                rebuild_target_position = \(target.globalPosition), rebuild_partitions = \(Int32(count)),
                rebuild_id = nextval(\(rebuildIDs)::regclass), state = 'rebuilding', updated_at = now()
            WHERE name = \(key.name) AND version = \(key.version) AND lease_owner = \(owner) AND lease_token = \(token)
              AND lifecycle <> 'dropped'
            RETURNING name, version, rebuild_id)
        INSERT INTO \(unescaped: partitions) (name, version, partition, rebuild_id, checkpoint_xid, checkpoint_position)
        SELECT s.name, s.version, p, s.rebuild_id, \(String(from.transactionID))::xid8, \(from.globalPosition)
        FROM started s, generate_series(0, \(Int32(count)) - 1) AS p
        RETURNING 1
        """
    }

    /// A row of ``claimPartition(_:owner:milliseconds:)``: the partition claimed, its token and
    /// checkpoint, and the rebuild's id, start (the version's checkpoint), target and partition count.
    struct PartitionClaim: Sendable {
        var partition: Int
        var token: Int64
        var rebuildID: Int64
        var checkpoint: LogPosition
        var start: LogPosition
        var target: LogPosition
        var partitions: Int

        init(_ row: PostgresRow) throws {
            let (partition, token, rebuildID, transaction, position, startTransaction, startPosition, targetTransaction, targetPosition, count) =
                try row.decode((Int32, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int32).self)
            (self.partition, self.token, self.rebuildID, partitions) = (Int(partition), token, rebuildID, Int(count))
            checkpoint = LogPosition(transactionID: UInt64(transaction), globalPosition: position)
            start = LogPosition(transactionID: UInt64(startTransaction), globalPosition: startPosition)
            target = LogPosition(transactionID: UInt64(targetTransaction), globalPosition: targetPosition)
        }
    }

    /// Claims the first partition of the version's current rebuild (if it is `rebuildID`, when given)
    /// that is neither done nor held (or whose holder's lease expired); its token goes up. No row:
    /// nothing left to claim.
    func claimPartition(_ key: LeaseKey, owner: String, milliseconds: Int64, rebuildID: Int64? = nil) -> PostgresQuery {
        """
        UPDATE \(unescaped: partitions) p SET lease_owner = \(owner), lease_token = p.lease_token + 1,
            lease_expires_at = clock_timestamp() + \(milliseconds) * interval '1 millisecond'
        FROM (SELECT r.name, r.version, r.partition, v.checkpoint_xid, v.checkpoint_position, v.rebuild_target_xid,
                     v.rebuild_target_position, v.rebuild_partitions
              FROM \(unescaped: partitions) r JOIN \(unescaped: projections) v
                ON v.name = r.name AND v.version = r.version AND v.rebuild_id = r.rebuild_id
              WHERE r.name = \(key.name) AND r.version = \(key.version) AND NOT r.done AND v.lifecycle = 'building'
                AND r.in_log_order AND (\(rebuildID)::int8 IS NULL OR r.rebuild_id = \(rebuildID))
                AND (r.lease_owner IS NULL OR r.lease_expires_at < now())
              ORDER BY r.partition LIMIT 1 FOR UPDATE OF r SKIP LOCKED) free
        WHERE (p.name, p.version, p.partition) = (free.name, free.version, free.partition)
        RETURNING p.partition, p.lease_token, p.rebuild_id, p.checkpoint_xid::text::int8, p.checkpoint_position,
                  free.checkpoint_xid::text::int8, free.checkpoint_position,
                  free.rebuild_target_xid::text::int8, free.rebuild_target_position, free.rebuild_partitions
        """
    }

    /// Keeps this owner's partitions of the version's rebuild claimed while their batches run.
    func renewPartitions(_ key: LeaseKey, owner: String, milliseconds: Int64) -> PostgresQuery {
        """
        UPDATE \(unescaped: partitions) SET lease_expires_at = clock_timestamp() + \(milliseconds) * interval '1 millisecond'
        WHERE name = \(key.name) AND version = \(key.version) AND lease_owner = \(owner) AND NOT done
        """
    }

    /// A partition's checkpoint and holder, to go on from after a fault whose commit is unknown.
    func partitionCheckpoint(_ key: LeaseKey, partition: Int, rebuildID: Int64) -> PostgresQuery {
        """
        SELECT checkpoint_xid::text::int8, checkpoint_position, lease_owner, lease_token FROM \(unescaped: partitions)
        WHERE name = \(key.name) AND version = \(key.version) AND partition = \(Int32(partition)) AND rebuild_id = \(rebuildID)
        """
    }

    /// Moves a partition's checkpoint in the transaction of its writes, fenced by the partition's
    /// lease and rebuild id, the version not being dropped (its row held `FOR SHARE` until the
    /// commit, a moment), and the checkpoint being still at `start`, where the batch began: a batch
    /// whose commit went through unseen (a lost reply) and is sent again moves nothing. No row: the
    /// lease was lost (or the rebuild reset, or the version dropped, or the checkpoint moved).
    func advancePartition(
        _ key: LeaseKey, partition: Int, rebuildID: Int64, owner: String, token: Int64, from start: LogPosition,
        to checkpoint: LogPosition?, covered: Int, done: Bool, milliseconds: Int64, asynchronousCommit: Bool
    ) -> PostgresQuery {
        """
        UPDATE \(unescaped: partitions) SET
            checkpoint_xid = coalesce(\(checkpoint.map { String($0.transactionID) })::xid8, checkpoint_xid),
            checkpoint_position = coalesce(\(checkpoint?.globalPosition), checkpoint_position),
            events_applied = events_applied + \(covered),
            done = \(done), lease_expires_at = clock_timestamp() + \(milliseconds) * interval '1 millisecond'
        WHERE name = \(key.name) AND version = \(key.version) AND partition = \(Int32(partition)) AND rebuild_id = \(rebuildID)
          AND lease_owner = \(owner) AND lease_token = \(token)
          AND checkpoint_xid = \(String(start.transactionID))::xid8 AND checkpoint_position = \(start.globalPosition)
          AND EXISTS (SELECT 1 FROM \(unescaped: projections) WHERE name = \(key.name) AND version = \(key.version)
                      AND lifecycle <> 'dropped' AND rebuild_id = \(rebuildID) FOR SHARE)
        RETURNING \(unescaped: ProjectionQueries.commitMode(asynchronous: asynchronousCommit))
        """
    }

    /// Partitions of the version's rebuild started before partitions were applied in log order from
    /// a shared read (Migrations/projections/0008): their checkpoints place them by another rule.
    func partitionsByOlderRule(_ key: LeaseKey) -> PostgresQuery {
        "SELECT count(*) FROM \(unescaped: partitions) WHERE name = \(key.name) AND version = \(key.version) AND NOT in_log_order"
    }

    /// Events applied by every partition so far, and how many partitions are still to finish.
    func rebuildProgress(_ key: LeaseKey) -> PostgresQuery {
        """
        SELECT coalesce(sum(events_applied), 0)::int8, count(*) FILTER (WHERE NOT done) FROM \(unescaped: partitions)
        WHERE name = \(key.name) AND version = \(key.version)
        """
    }

    /// Marks a rebuild that loads UNLOGGED tables (the marker is UNLOGGED too).
    func setSentinel(_ key: LeaseKey) -> PostgresQuery {
        """
        INSERT INTO \(unescaped: sentinels) (name, version, rebuild_id)
        SELECT name, version, rebuild_id FROM \(unescaped: projections) WHERE name = \(key.name) AND version = \(key.version)
        ON CONFLICT (name, version) DO UPDATE SET rebuild_id = excluded.rebuild_id
        """
    }

    /// 1 when the version's current rebuild has its marker (its UNLOGGED tables survived), else 0.
    func sentinelSurvived(_ key: LeaseKey) -> PostgresQuery {
        """
        SELECT count(*) FROM \(unescaped: sentinels) s JOIN \(unescaped: projections) p USING (name, version)
        WHERE name = \(key.name) AND version = \(key.version) AND s.rebuild_id = p.rebuild_id
        """
    }

    func deleteSentinel(_ key: LeaseKey) -> PostgresQuery {
        "DELETE FROM \(unescaped: sentinels) WHERE name = \(key.name) AND version = \(key.version)"
    }

    /// Starts a building version over from the first event (its tables are emptied by the caller in
    /// the same transaction), fenced by the lease.
    func restartBuild(_ key: LeaseKey, owner: String, token: Int64) -> PostgresQuery {
        """
        UPDATE \(unescaped: projections) SET checkpoint_xid = '0', checkpoint_position = 0, events_applied = 0,
            rebuild_target_xid = NULL, rebuild_target_position = NULL, rebuild_partitions = NULL, rebuild_id = NULL,
            state = 'catching_up', updated_at = now()
        WHERE name = \(key.name) AND version = \(key.version) AND lease_owner = \(owner) AND lease_token = \(token)
          AND lifecycle = 'building'
        RETURNING 1
        """
    }

    /// Ends a rebuild: the version's checkpoint jumps to the target every partition reached.
    func finishRebuild(_ key: LeaseKey, owner: String, token: Int64, target: LogPosition) -> PostgresQuery {
        """
        UPDATE \(unescaped: projections) SET checkpoint_xid = \(String(target.transactionID))::xid8,
            checkpoint_position = \(target.globalPosition),
            events_applied = events_applied + coalesce((SELECT sum(events_applied) FROM \(unescaped: partitions)
                WHERE name = \(key.name) AND version = \(key.version)), 0),
            rebuild_target_xid = NULL, rebuild_target_position = NULL, rebuild_partitions = NULL, rebuild_id = NULL,
            state = 'catching_up', updated_at = now()
        WHERE name = \(key.name) AND version = \(key.version) AND lease_owner = \(owner) AND lease_token = \(token)
          AND lifecycle <> 'dropped'
        RETURNING 1
        """
    }

    /// A rebuild stopped on a poison event (the caller checked its partition lease in the same transaction).
    func markRebuildFailed(_ id: ProjectionID, event: RecordedEvent, error: String) -> PostgresQuery {
        """
        UPDATE \(unescaped: projections) SET state = 'failed', failed_position = \(event.position.globalPosition),
            failed_event_id = \(event.id), failed_event_type = \(event.eventType), failed_error = \(error), updated_at = now()
        WHERE name = \(id.name) AND version = \(id.version)
        """
    }

    func deletePartitions(_ key: LeaseKey) -> PostgresQuery {
        "DELETE FROM \(unescaped: partitions) WHERE name = \(key.name) AND version = \(key.version)"
    }

    /// A building version caught up: fenced, like every write of the lease holder.
    func markCaughtUp(_ key: LeaseKey, owner: String, token: Int64) -> PostgresQuery {
        """
        UPDATE \(unescaped: projections) SET lifecycle = 'caught_up', updated_at = now()
        WHERE name = \(key.name) AND version = \(key.version) AND lease_owner = \(owner) AND lease_token = \(token)
          AND lifecycle = 'building'
        RETURNING 1
        """
    }

    /// Starts a version again from the first event (a rebuild from scratch): its schema is recreated
    /// by the caller in the same transaction.
    func resetVersion(_ id: ProjectionID, owner: String, token: Int64) -> PostgresQuery {
        """
        UPDATE \(unescaped: projections) SET lifecycle = 'building', state = 'catching_up', checkpoint_xid = '0',
            checkpoint_position = 0, events_applied = 0, rebuild_target_xid = NULL, rebuild_target_position = NULL,
            rebuild_partitions = NULL, rebuild_id = NULL, promoted_at = NULL, retired_at = NULL, failed_position = NULL, failed_event_id = NULL,
            failed_event_type = NULL, failed_error = NULL, updated_at = now()
        WHERE name = \(id.name) AND version = \(id.version) AND lease_owner = \(owner) AND lease_token = \(token)
        RETURNING 1
        """
    }

    func deleteDeadLetters(_ id: ProjectionID) -> PostgresQuery {
        "DELETE FROM \(unescaped: deadLetters) WHERE projection = \(id.name) AND version = \(id.version)"
    }

    func setLifecycle(_ name: String, version: Int, to lifecycle: String) -> PostgresQuery {
        """
        UPDATE \(unescaped: projections) SET lifecycle = \(lifecycle), updated_at = now(),
            promoted_at = CASE WHEN \(lifecycle) = 'active' THEN now() ELSE promoted_at END,
            retired_at = CASE WHEN \(lifecycle) = 'retired' THEN now() WHEN \(lifecycle) = 'active' THEN NULL ELSE retired_at END
        WHERE name = \(name) AND version = \(Int32(version))
        """
    }

    /// Drops a version: it can never be taken again (the token moves, so its holder's next write fails).
    func markDropped(_ name: String, version: Int) -> PostgresQuery {
        """
        UPDATE \(unescaped: projections) SET lifecycle = 'dropped', lease_owner = NULL, lease_expires_at = NULL,
            lease_token = lease_token + 1, updated_at = now()
        WHERE name = \(name) AND version = \(Int32(version))
        """
    }

    func recordSwitch(_ name: String, from: Int?, to: Int, kind: String) -> PostgresQuery {
        "INSERT INTO \(unescaped: switches) (name, from_version, to_version, kind) VALUES (\(name), \(from.map(Int32.init)), \(Int32(to)), \(kind))"
    }

    /// The relations of a schema that readers see through stable names, and the views already there.
    /// The privileges others hold on the views of `schema` (a projection's stable names): each grantee
    /// (quoted, or `PUBLIC`) with each privilege it holds on any of them.
    func viewGrants(in schema: String) -> PostgresQuery {
        """
        SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, a.privilege_type
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
        WHERE n.nspname = \(schema) AND c.relkind = 'v' AND a.grantee <> c.relowner
        ORDER BY 1, 2
        """
    }

    /// Whether `role` exists, and whether the current role may create roles.
    func roleState(_ role: String) -> PostgresQuery {
        """
        SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = \(role)),
               (SELECT rolcreaterole OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
        """
    }

    func relations(in schema: String, kinds: [String]) -> PostgresQuery {
        """
        SELECT c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = \(schema) AND c.relkind::text = ANY(\(kinds)) ORDER BY c.relname
        """
    }

    func unloggedTables(in schema: String) -> PostgresQuery {
        """
        SELECT c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = \(schema) AND c.relkind = 'r' AND c.relpersistence = 'u' ORDER BY c.relname
        """
    }
}
