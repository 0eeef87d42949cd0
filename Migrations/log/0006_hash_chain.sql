-- Tamper evidence beyond the database's own guard. The triggers of 0001 refuse every change to an
-- event, but a role that owns the table or is a superuser can disable them. So every event also
-- carries a SHA-256 hash chained to the previous event of its stream, set by the server as the event
-- is inserted (a BEFORE INSERT trigger: no extra round trip). An edit of history that does not also
-- rewrite the hashes of every later event of the stream shows: PostgresEventStore.verifyChains
-- (`<app> log verify`) recomputes every chain on its own and names the first event that no longer
-- matches. Anchoring the chains outside the database (keeping a stream's last hash elsewhere) is
-- what also catches an editor who recomputes them.
--
-- The hash of the event at version N of a stream is SHA-256 of these bytes, in this order:
--   stream_version   8 bytes, big-endian (int8send)
--   previous hash    32 bytes: event_hash of version N-1 of the same stream; absent when N = 1
--   event_id         16 bytes, the UUID's bytes in order (uuid_send)
--   schema_version   4 bytes, big-endian (int4send)
--   recorded_at      8 bytes, big-endian: microseconds since 2000-01-01 00:00:00 UTC (timestamptz_send)
--   stream_id, event_type, payload, metadata, in that order, each as
--                    its UTF-8 bytes' count (4 bytes, big-endian), then those bytes; payload and
--                    metadata are the `json` text exactly as stored (0003), metadata `{}` when empty.
-- The version comes first and says whether a previous hash follows; every other field has a fixed
-- width or its length before it: no two different events, or predecessors, give the same bytes.
-- Position and transaction id are not covered: they are the log's order, stamped by the server (0005).
--
-- The chain is also a guard: an event whose predecessor (version N-1) is not there is refused
-- (SQLSTATE KP003), so a stream's versions run 1, 2, 3… without gaps whoever inserts. A
-- client-supplied event_hash is overwritten, and the writer role has no INSERT privilege on it.
-- A row-level BEFORE trigger sees the rows inserted before it by the same statement, so an append
-- of many events chains them in order.
--
-- Cost: per appended row, one index probe for the predecessor and one SHA-256 over the event, in a
-- PL/pgSQL call (the append benchmark's figures are in the README).
--
-- On an existing log, the migration computes every event's hash and writes it in one UPDATE, with
-- the update trigger disabled for its length (the owner migrates), and the indexes built afresh after
-- it. ALTER TABLE locks the table, so nothing reads or appends meanwhile: about 15 s a million events
-- on a 2-core machine, and the table takes twice its space until VACUUM (run `VACUUM events` after
-- it; a migration cannot, as it runs in a transaction). A log whose streams have gaps is refused.
-- Applied by KappaPostgres.Migrator with search_path set to the store's schema.

ALTER TABLE events ADD COLUMN event_hash bytea;

-- A text field as the hash covers it: its UTF-8 bytes' count (4 bytes, big-endian), then the bytes.
CREATE FUNCTION events_chain_text(value text) RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN int4send(octet_length(convert_to(value, 'UTF8'))) || convert_to(value, 'UTF8');

-- The hash of event `e` following `previous` (the empty bytea for version 1), for SQL that recomputes
-- one (the backfill below). Its body is bound to this schema's functions when created, so it needs
-- no search_path. PUBLIC may execute both functions: they read nothing, and the trigger calls
-- events_chain_text as whoever appends.
CREATE FUNCTION events_chain_hash(previous bytea, e events) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
RETURN sha256(
    int8send(e.stream_version) || previous || uuid_send(e.event_id) || int4send(e.schema_version)
    || timestamptz_send(e.recorded_at)
    || events_chain_text(e.stream_id) || events_chain_text(e.event_type)
    || events_chain_text(e.payload::text) || events_chain_text(e.metadata::text));

-- Existing events: refused when a stream has a gap (the chain would hide it), else chained stream by
-- stream in version order, by a running aggregate of events_chain_hash. Its step is PL/pgSQL, which
-- calls the SQL function inlined: half the time of the SQL function as the step. Both are dropped
-- once the backfill is done (the step resolves names by the migration's search_path).
CREATE FUNCTION events_chain_fold_step(previous bytea, e events) RETURNS bytea
LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN events_chain_hash(previous, e); END $$;
CREATE AGGREGATE events_chain_fold(events) (SFUNC = events_chain_fold_step, STYPE = bytea, INITCOND = '');

DO $backfill$
DECLARE
    gap record;
BEGIN
    SELECT v.stream_id, v.stream_version, v.previous INTO gap
    FROM (SELECT stream_id, stream_version,
                 lag(stream_version, 1, 0::bigint) OVER (PARTITION BY stream_id ORDER BY stream_version) AS previous
          FROM events) AS v
    WHERE v.stream_version <> v.previous + 1
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'stream % has version % after version %: the hash chain of a stream with a gap cannot be computed',
            gap.stream_id, gap.stream_version, gap.previous
            USING ERRCODE = 'KP003',
                  HINT = 'Every stream''s versions must run 1, 2, 3… Find the gaps with: SELECT stream_id, stream_version FROM events e WHERE stream_version > 1 AND NOT EXISTS (SELECT FROM events p WHERE p.stream_id = e.stream_id AND p.stream_version = e.stream_version - 1)';
    END IF;

    -- The hashes, computed in one pass along the unique index, kept apart while the table is updated.
    CREATE TEMPORARY TABLE events_chain_backfill ON COMMIT DROP AS
    SELECT v.position, events_chain_fold(v) OVER (PARTITION BY v.stream_id ORDER BY v.stream_version ROWS UNBOUNDED PRECEDING) AS hash
    FROM events AS v;

    -- The update rewrites every row; the indexes are built afresh after it rather than updated row
    -- by row (half the time, and no index left twice its size).
    ALTER TABLE events
        DROP CONSTRAINT events_pkey, DROP CONSTRAINT events_event_id_key, DROP CONSTRAINT events_stream_version_key;
    DROP INDEX events_log_order_idx;
    ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete;
    UPDATE events AS e SET event_hash = c.hash FROM events_chain_backfill AS c WHERE e.position = c.position;
    ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete;
    ALTER TABLE events
        ADD CONSTRAINT events_pkey PRIMARY KEY (position),
        ADD CONSTRAINT events_event_id_key UNIQUE (event_id),
        ADD CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version);
    CREATE INDEX events_log_order_idx ON events (transaction_id, position);
END
$backfill$;

DROP AGGREGATE events_chain_fold(events);
DROP FUNCTION events_chain_fold_step(bytea, events);
ALTER TABLE events ALTER COLUMN event_hash SET NOT NULL;

-- New events: the trigger looks up the predecessor's hash (the unique index on stream and version)
-- and sets the event's: events_chain_hash's expression, written out, as calling it with the row cost
-- a one-event append about 10 µs more of server CPU (the tests check both against the encoding
-- above). It names the table with the schema it is created in, so it needs no search_path. It
-- fires before events_stamp_order (triggers fire in name order); neither changes what the other reads.
DO $chain$
BEGIN
    EXECUTE format($function$
        CREATE FUNCTION %1$I.events_chain() RETURNS trigger
        LANGUAGE plpgsql AS $body$
        DECLARE
            previous bytea := ''::bytea;
        BEGIN
            IF NEW.stream_version > 1 THEN
                SELECT p.event_hash INTO previous FROM %1$I.events p
                WHERE p.stream_id = NEW.stream_id AND p.stream_version = NEW.stream_version - 1;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'stream %% has no version %%: version %% is refused on %%.%%', NEW.stream_id, NEW.stream_version - 1, NEW.stream_version, TG_TABLE_SCHEMA, TG_TABLE_NAME
                        USING ERRCODE = 'KP003', HINT = 'A stream''s versions run 1, 2, 3… without gaps; append at the stream''s next version.';
                END IF;
            END IF;
            NEW.event_hash := sha256(
                int8send(NEW.stream_version) || previous || uuid_send(NEW.event_id) || int4send(NEW.schema_version)
                || timestamptz_send(NEW.recorded_at)
                || %1$I.events_chain_text(NEW.stream_id) || %1$I.events_chain_text(NEW.event_type)
                || %1$I.events_chain_text(NEW.payload::text) || %1$I.events_chain_text(NEW.metadata::text));
            RETURN NEW;
        END
        $body$
    $function$, current_schema());
END
$chain$;

CREATE TRIGGER events_chain
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_chain();

REVOKE EXECUTE ON FUNCTION events_chain() FROM PUBLIC;
