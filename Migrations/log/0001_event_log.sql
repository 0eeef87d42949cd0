-- The event log: append-only, immutable, in one global order.
-- Applied by KappaPostgres.Migrator with search_path set to the store's schema,
-- so every object below is created in that schema.

CREATE TABLE events (
    -- Unique, increasing number given at insert. The log's order is (transaction_id, position):
    -- transactions commit out of order, so position alone is not the order readers follow.
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at     timestamptz NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_stream_version_positive CHECK (stream_version > 0),
    CONSTRAINT events_schema_version_positive CHECK (schema_version > 0)
);

-- Followers read by (transaction_id, position) below the transaction horizon.
CREATE INDEX events_log_order_idx ON events (transaction_id, position);

-- History cannot be rewritten, whatever the client: no UPDATE, DELETE or TRUNCATE.
CREATE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'KP001', HINT = 'Append a compensating event instead.';
END
$$;

CREATE TRIGGER events_refuse_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER events_refuse_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
