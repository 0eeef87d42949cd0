-- Least privilege by default: two group roles (NOLOGIN) per log, named after its schema,
--   <schema>_writer  appends and reads: INSERT on the columns an append writes, EXECUTE on the
--                    append functions, SELECT on the events;
--   <schema>_reader  reads: SELECT on the events.
-- Neither can UPDATE, DELETE, TRUNCATE, alter or drop anything, or create objects in the schema; the
-- owner (the role that migrates) keeps those. Applications log in as roles granted one of these.
-- Roles are cluster-wide: schemas of the same name in two databases share them.
-- Applied by KappaPostgres.Migrator with search_path set to the store's schema.

-- The order key is the server's, whatever the client sends: transaction_id is always the inserting
-- transaction's, and position always the identity sequence's next value (an owner could otherwise
-- send its own with OVERRIDING SYSTEM VALUE; other roles have no INSERT privilege on either column).
-- The identity value is drawn just before this trigger runs for its row, so it is the session's
-- currval; an override in a session that never drew one fails in currval itself (SQLSTATE 55000).
-- Its cost is per row: one PL/pgSQL call, a few microseconds.
DO $stamp$
BEGIN
    EXECUTE format($function$
        CREATE FUNCTION %1$I.events_stamp_order() RETURNS trigger
        LANGUAGE plpgsql AS $body$
        BEGIN
            IF NEW.position IS DISTINCT FROM currval(%2$L::regclass) THEN
                RAISE EXCEPTION 'the event log numbers its events itself: position %% is refused on %%.%%', NEW.position, TG_TABLE_SCHEMA, TG_TABLE_NAME
                    USING ERRCODE = '428C9', HINT = 'Insert without a position and without OVERRIDING SYSTEM VALUE.';
            END IF;
            NEW.transaction_id := pg_current_xact_id();
            RETURN NEW;
        END
        $body$
    $function$, current_schema(), pg_get_serial_sequence(format('%I.events', current_schema()), 'position'));
END
$stamp$;

CREATE TRIGGER events_stamp_order
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_stamp_order();

-- PostgreSQL lets PUBLIC execute every new function. Revoked by name, for this file's functions and
-- earlier files' only: other functions of the schema may be meant for every reader.
-- (Trigger functions need no EXECUTE privilege to fire.)
REVOKE EXECUTE ON FUNCTION
    append_events(text, uuid[], text[], integer[], json[], json[], timestamptz[], text, bigint),
    append_event(text, uuid, text, integer, json, json, timestamptz, text, bigint),
    events_refuse_change(),
    events_stamp_order()
FROM PUBLIC;

DO $roles$
DECLARE
    writer text := current_schema() || '_writer';
    reader text := current_schema() || '_reader';
    role text;
    administrator_sql text;
BEGIN
    IF octet_length(writer) > 63 THEN
        RAISE EXCEPTION 'schema name % is too long for its roles (% needs at most 63 bytes)', current_schema(), writer
            USING ERRCODE = '42622', HINT = 'Use a schema name of at most 56 bytes.';
    END IF;
    administrator_sql := format('CREATE ROLE %I NOLOGIN; CREATE ROLE %I NOLOGIN;', writer, reader);
    FOREACH role IN ARRAY ARRAY[writer, reader] LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = role);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role);
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % may not create role % (it lacks CREATEROLE); an administrator runs: %', current_user, role, administrator_sql
                    USING ERRCODE = '42501',
                          HINT = format('As a role with CREATEROLE, run: %s Then migrate again.', administrator_sql);
            WHEN duplicate_object THEN
                NULL; -- created meanwhile by a migration of a same-named schema in another database
        END;
    END LOOP;

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I, %I', current_schema(), writer, reader);
    EXECUTE format('GRANT SELECT ON TABLE %I.events TO %I, %I', current_schema(), writer, reader);
    -- Not position or transaction_id: the server sets those.
    EXECUTE format($grant$
        GRANT INSERT (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)
        ON TABLE %I.events TO %I
        $grant$, current_schema(), writer);
    -- SELECT only, for the stamp trigger's currval; the identity draws its values without USAGE.
    EXECUTE format('GRANT SELECT ON SEQUENCE %s TO %I',
        pg_get_serial_sequence(format('%I.events', current_schema()), 'position'), writer);
    EXECUTE format($grant$
        GRANT EXECUTE ON FUNCTION
            %1$I.append_events(text, uuid[], text[], integer[], json[], json[], timestamptz[], text, bigint),
            %1$I.append_event(text, uuid, text, integer, json, json, timestamptz, text, bigint)
        TO %2$I
        $grant$, current_schema(), writer);
    -- Both may see what holds the log's horizon (status, read-your-writes diagnostics).
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.log_horizon_holders() TO %I, %I', current_schema(), writer, reader);
END
$roles$;
