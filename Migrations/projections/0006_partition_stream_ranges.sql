-- A partition of a parallel rebuild is a range of hashtext(stream_id) read in the order (hash,
-- transaction_id, position), so its checkpoint names the stream of the last event applied (NULL: none
-- yet, the range's first hash). The log's order alone no longer places a partition's checkpoint.
--
-- Rebuilds already in progress split the streams by another rule: their rows are marked, and the
-- runner starts such a rebuild over rather than go on with checkpoints that mean something else.
-- Applied by KappaPostgres.Migrator with search_path set to the runtime's schema.
ALTER TABLE rebuild_partitions ADD COLUMN checkpoint_stream text;
ALTER TABLE rebuild_partitions ADD COLUMN by_stream_hash boolean NOT NULL DEFAULT false;
ALTER TABLE rebuild_partitions ALTER COLUMN by_stream_hash SET DEFAULT true;
