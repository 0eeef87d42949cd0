-- An order that survives backup, restore and failover.
--
-- The log's order key, transaction_id, is the appending transaction's id (xid8). Restored into
-- another cluster (pg_dump/pg_restore), recovered to a point in time, or failed over, the log can
-- hold ids at or above the ones the server will give next. Its events would then lie beyond every
-- horizon (a fresh reader sees none of them), and new appends would take ids below them (a follower
-- already past them never sees the new events).
--
-- So the order key is the transaction id plus an offset the log keeps in log_order (0 until
-- needed): log_xid(). When the log holds an id at or above the server's next, appends are refused
-- (SQLSTATE KP002) until log_repair_order() raises the offset so that every transaction that may
-- still append comes after every stored event. The repair takes the same lock as a concurrent one
-- and looks again once it holds it, so processes that start together repair once.
-- PostgresEventStore.migrate() repairs; so does an append that meets KP002.
-- Applied by KappaPostgres.Migrator with search_path set to the store's schema.

CREATE TABLE log_order (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    -- Added to the server's transaction ids: never lowered, so the order only moves forward.
    xid_offset bigint  NOT NULL DEFAULT 0 CHECK (xid_offset >= 0)
);
INSERT INTO log_order DEFAULT VALUES;

-- Refused like the events: only log_repair_order() (its owner's) changes the offset.
CREATE TRIGGER log_order_refuse_delete
    BEFORE DELETE ON log_order
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER log_order_refuse_truncate
    BEFORE TRUNCATE ON log_order
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Lowered, the offset would give new events keys below stored ones.
CREATE FUNCTION log_order_refuse_lowering() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.xid_offset < OLD.xid_offset THEN
        RAISE EXCEPTION 'the log''s order offset only rises: % to % on %.% is refused', OLD.xid_offset, NEW.xid_offset, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'KP001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER log_order_only_rises
    BEFORE UPDATE ON log_order
    FOR EACH ROW EXECUTE FUNCTION log_order_refuse_lowering();

DO $create$
BEGIN
    -- A server transaction id as the log's order key. Called once a statement by reads (the horizon);
    -- the append trigger reads the offset itself, cheaper per row than calling it.
    EXECUTE format($function$
        CREATE FUNCTION %1$I.log_xid(x xid8) RETURNS xid8
        LANGUAGE sql STABLE AS $body$
            SELECT (x::text::int8 + (SELECT o.xid_offset FROM %1$I.log_order o))::text::xid8
        $body$
    $function$, current_schema());

    -- The order key stamped on each appended event.
    EXECUTE format($function$
        CREATE OR REPLACE FUNCTION %1$I.events_stamp_order() RETURNS trigger
        LANGUAGE plpgsql AS $body$
        BEGIN
            IF NEW.position IS DISTINCT FROM currval(%2$L::regclass) THEN
                RAISE EXCEPTION 'the event log numbers its events itself: position %% is refused on %%.%%', NEW.position, TG_TABLE_SCHEMA, TG_TABLE_NAME
                    USING ERRCODE = '428C9', HINT = 'Insert without a position and without OVERRIDING SYSTEM VALUE.';
            END IF;
            SELECT (pg_current_xact_id()::text::int8 + o.xid_offset)::text::xid8 INTO NEW.transaction_id FROM %1$I.log_order o;
            RETURN NEW;
        END
        $body$
    $function$, current_schema(), pg_get_serial_sequence(format('%I.events', current_schema()), 'position'));

    -- Once a statement: appends are refused while the log holds an id at or above the server's next
    -- one. A statement sees committed events, whose ids are below its snapshot's xmax, and its own
    -- transaction's, whose id may be at or past that xmax (when no transaction ended after it
    -- began): the next id is past both, so a log never restored or failed over never trips it.
    -- Its cost: a walk to the end of the order index.
    EXECUTE format($function$
        CREATE FUNCTION %1$I.events_guard_order() RETURNS trigger
        LANGUAGE plpgsql AS $body$
        DECLARE
            newest xid8 := (SELECT max(transaction_id) FROM %1$I.events);
            next xid8 := %1$I.log_xid(greatest(pg_snapshot_xmax(pg_current_snapshot()),
                (pg_current_xact_id_if_assigned()::text::int8 + 1)::text::xid8));
        BEGIN
            IF newest >= next THEN
                RAISE EXCEPTION 'the event log %%.events holds transaction id %% and this server gives %% next: it was restored or failed over from another server, and appends would come before events already stored', TG_TABLE_SCHEMA, newest, next
                    USING ERRCODE = 'KP002',
                          HINT = format('Repair its order: SELECT %%I.log_repair_order(); (PostgresEventStore.migrate() and the store''s appends do it.)', TG_TABLE_SCHEMA);
            END IF;
            RETURN NULL;
        END
        $body$
    $function$, current_schema());

    -- Raises the offset, when needed, so that every transaction that may still append (any with an
    -- id at or above the oldest open one) comes after every stored event. Returns what it added.
    -- SECURITY DEFINER: writers run it too; it changes nothing but the offset, and only upwards.
    EXECUTE format($function$
        CREATE FUNCTION %1$I.log_repair_order() RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        DECLARE
            newest xid8;
            shift bigint;
        BEGIN
            -- Conflicts with appends (waits for those in flight, holds back new ones) and with itself.
            LOCK TABLE %1$I.events IN SHARE ROW EXCLUSIVE MODE;
            newest := (SELECT max(transaction_id) FROM %1$I.events);
            IF newest IS NULL OR newest < %1$I.log_xid(pg_snapshot_xmax(pg_current_snapshot())) THEN
                RETURN 0;
            END IF;
            shift := newest::text::int8 + 1 - %1$I.log_xid(pg_snapshot_xmin(pg_current_snapshot()))::text::int8;
            UPDATE %1$I.log_order SET xid_offset = xid_offset + shift;
            RETURN shift;
        END
        $body$
    $function$, current_schema());
END
$create$;

CREATE TRIGGER events_guard_order
    BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_guard_order();

-- Who may append (0004), now counting column privileges: the writer role (0005) holds INSERT on
-- the columns an append writes, not on the table, and has_table_privilege() counts only the table's.
-- Without them a writer's open transaction held no follower back, which could then pass its events.
CREATE OR REPLACE FUNCTION log_foreign_transactions() RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT l.transactionid::text::bigint
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
      AND (a.datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())
           OR a.usesysid IS NULL
           OR NOT has_any_column_privilege(a.usesysid, format('%I.events', current_schema()), 'INSERT'))
    UNION ALL
    SELECT p.transaction::text::bigint
    FROM pg_prepared_xacts p
    WHERE p.database <> current_database()
       OR NOT has_any_column_privilege(p.owner, format('%I.events', current_schema()), 'INSERT')
$$;

-- The horizon (0004) in the log's order: the snapshot's ids with the offset added.
CREATE OR REPLACE FUNCTION log_horizon(snap pg_snapshot) RETURNS xid8
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT CASE
        WHEN coalesce((SELECT max(transaction_id) FROM events), '0'::xid8) < log_xid(pg_snapshot_xmin(snap))
            THEN log_xid(pg_snapshot_xmin(snap))
        ELSE (SELECT coalesce(min(log_xid(x)), log_xid(pg_snapshot_xmax(snap)))
              FROM pg_snapshot_xip(snap) AS x
              WHERE (x::text::numeric % 4294967296)::bigint NOT IN (SELECT log_foreign_transactions()))
    END
$$;

-- What holds the horizon (0004), in the log's order, now from the locks of every transaction with
-- an id: the snapshot's list leaves out a transaction that began after the last one to end (its id
-- is at or past the snapshot's xmax), and such a transaction holds the horizon too. The 32-bit ids
-- of the locks take the epoch that puts them nearest the server's next id.
CREATE OR REPLACE FUNCTION log_horizon_holders()
RETURNS TABLE (transaction_id xid8, pid integer, database name, role name, age_seconds float8, prepared_gid text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    WITH next AS (
        SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8 AS n
    ), holders AS (
        SELECT l.transactionid::text::bigint AS x32, a.pid, a.datname AS database, a.usename AS role,
               extract(epoch FROM now() - a.xact_start)::float8 AS age, NULL::text AS gid
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
        UNION ALL
        SELECT p.transaction::text::bigint, NULL, p.database, p.owner, extract(epoch FROM now() - p.prepared)::float8, p.gid
        FROM pg_prepared_xacts p
    ), full_ids AS (
        SELECT h.*, (next.n & ~4294967295::bigint) + h.x32 AS candidate, next.n
        FROM holders h, next
        WHERE h.x32 NOT IN (SELECT log_foreign_transactions())
    )
    SELECT log_xid((CASE WHEN candidate > n + 2147483648 THEN candidate - 4294967296
                         WHEN candidate < n - 2147483648 THEN candidate + 4294967296
                         ELSE candidate END)::text::xid8),
           pid, database, role, age, gid
    FROM full_ids
    ORDER BY 1
$$;

REVOKE EXECUTE ON FUNCTION log_xid(xid8), events_guard_order(), log_repair_order(), log_order_refuse_lowering() FROM PUBLIC;

DO $grant$
DECLARE
    writer text := current_schema() || '_writer';
    reader text := current_schema() || '_reader';
BEGIN
    -- Both read in the log's order (the horizon); writers stamp it and may repair it.
    EXECUTE format('GRANT SELECT ON TABLE %I.log_order TO %I, %I', current_schema(), writer, reader);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.log_xid(xid8) TO %I, %I', current_schema(), writer, reader);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.log_repair_order() TO %I', current_schema(), writer);
    -- So that an application's role, not the owner, finds the log up to date at its start.
    EXECUTE format('GRANT SELECT ON TABLE %I.kappa_migrations TO %I, %I', current_schema(), writer, reader);
END
$grant$;
