-- The horizon followers read below: the oldest transaction still open that may append to this log.
-- A transaction with a lower id may still commit events, so a follower never passes it; one that
-- cannot append here holds nothing back: a transaction of another database, of a role without
-- INSERT on events, a background process (autovacuum), or one prepared (two-phase) in another
-- database or by such a role. Applied by KappaPostgres.Migrator with search_path set to the log's
-- schema; the functions keep it (SET search_path FROM CURRENT) and name events by that schema.

-- The 32-bit ids of open transactions that cannot append to this log.
CREATE FUNCTION log_foreign_transactions() RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT l.transactionid::text::bigint
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
      AND (a.datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())
           OR a.usesysid IS NULL
           OR NOT has_table_privilege(a.usesysid, format('%I.events', current_schema()), 'INSERT'))
    UNION ALL
    SELECT p.transaction::text::bigint
    FROM pg_prepared_xacts p
    WHERE p.database <> current_database()
       OR NOT has_table_privilege(p.owner, format('%I.events', current_schema()), 'INSERT')
$$;

-- The horizon of `snap` (the statement's snapshot): its xmin while no committed event lies at or
-- beyond it (the usual case, and the cheap one); else the oldest open transaction that may append,
-- or the snapshot's xmax when there is none.
CREATE FUNCTION log_horizon(snap pg_snapshot) RETURNS xid8
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT CASE
        WHEN coalesce((SELECT max(transaction_id) FROM events), '0'::xid8) < pg_snapshot_xmin(snap)
            THEN pg_snapshot_xmin(snap)
        ELSE (SELECT coalesce(min(x), pg_snapshot_xmax(snap))
              FROM pg_snapshot_xip(snap) AS x
              WHERE (x::text::numeric % 4294967296)::bigint NOT IN (SELECT log_foreign_transactions()))
    END
$$;

-- What holds the horizon back now: each open transaction that may append to this log, oldest
-- first, with its backend (none for a prepared transaction), database, role, age and prepared
-- transaction's gid. SECURITY DEFINER, so that a role without pg_read_all_stats sees the ages
-- its owner (who migrates) can see.
CREATE FUNCTION log_horizon_holders()
RETURNS TABLE (transaction_id xid8, pid integer, database name, role name, age_seconds float8, prepared_gid text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    WITH open AS (
        SELECT x, (x::text::numeric % 4294967296)::bigint AS x32
        FROM pg_snapshot_xip(pg_current_snapshot()) AS x
        WHERE (x::text::numeric % 4294967296)::bigint NOT IN (SELECT log_foreign_transactions())
    )
    SELECT o.x, a.pid, a.datname, a.usename, extract(epoch FROM now() - a.xact_start)::float8, NULL::text
    FROM open o
    JOIN pg_locks l ON l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.transactionid::text::bigint = o.x32
    JOIN pg_stat_activity a ON a.pid = l.pid
    UNION ALL
    SELECT o.x, NULL, p.database, p.owner, extract(epoch FROM now() - p.prepared)::float8, p.gid
    FROM open o JOIN pg_prepared_xacts p ON p.transaction::text::bigint = o.x32
    ORDER BY 1
$$;
REVOKE ALL ON FUNCTION log_horizon_holders() FROM PUBLIC;
