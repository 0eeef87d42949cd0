-- Payloads and metadata are stored as `json`: the JSON text exactly as the writer sent it, byte for
-- byte (whitespace, key order and repeated keys kept), instead of `jsonb`'s parsed form.
--
-- Why: every read of the log sends each payload as text, and `jsonb` had to be turned back into text
-- for it. That conversion was over half of what a bulk rebuild cost the server (about 0.4 µs an
-- event of ~0.8 µs to pack a page; measured with `string_agg(jsonb_send(payload))` alone); `json`
-- is sent as it is stored. An append validates the text instead of building `jsonb`, which is cheaper too.
-- The cost: SQL that reads fields of a payload (`payload->>'cartId'`) parses the text each time;
-- cast once (`payload::jsonb`) or use `json_to_record` when reading many fields of many events.
--
-- Applying this to an existing log rewrites the events table under an exclusive lock (a few seconds
-- a million events on a small machine); the events themselves are unchanged: the text is the
-- `jsonb` value's text form, which is what readers were handed before.
-- Applied by KappaPostgres.Migrator with search_path set to the store's schema.

ALTER TABLE events
    ALTER COLUMN payload TYPE json USING payload::json,
    ALTER COLUMN metadata TYPE json USING metadata::json,
    ALTER COLUMN metadata SET DEFAULT '{}'::json;

-- The append functions (0002) took jsonb; the same functions over json. They are created anew, so
-- grants made on the old ones must be made again.
ALTER FUNCTION append_events(text, uuid[], text[], integer[], jsonb[], jsonb[], timestamptz[], text, bigint)
    RENAME TO append_events_jsonb;
ALTER FUNCTION append_event(text, uuid, text, integer, jsonb, jsonb, timestamptz, text, bigint)
    RENAME TO append_event_jsonb;

DO $recreate$
DECLARE
    old_name text;
    definition text;
BEGIN
    FOREACH old_name IN ARRAY ARRAY['append_events_jsonb', 'append_event_jsonb'] LOOP
        SELECT pg_get_functiondef(p.oid) INTO STRICT definition
        FROM pg_proc p WHERE p.proname = old_name AND p.pronamespace = current_schema()::regnamespace;
        -- The definition names the function with its schema; only its payload and metadata parameters change.
        definition := replace(definition, '.' || old_name || '(', '.' || left(old_name, -6) || '(');
        definition := regexp_replace(definition, '(p_payloads?|p_metadata) jsonb', '\1 json', 'g');
        EXECUTE format('DROP FUNCTION %I.%I', current_schema(), old_name);
        EXECUTE definition;
    END LOOP;
END
$recreate$;
