-- A partition of a parallel rebuild is the streams whose hash falls to it, applied in log order from
-- one read of the log that a process's workers share; its checkpoint is the log position of the last
-- event it applied (checkpoint_stream stays NULL). The server reads each event once however many
-- partitions a process works, where a range of stream hashes read by its own index cost it twice
-- what the log's order does.
--
-- Parallel rebuilds already in progress were split by the stream-hash rule: their rows are marked,
-- and the runner starts such a rebuild over. New rows are not by_stream_hash, so processes of an earlier
-- Kappa do not claim them.
-- Applied by KappaPostgres.Migrator with search_path set to the runtime's schema.
ALTER TABLE rebuild_partitions ADD COLUMN in_log_order boolean NOT NULL DEFAULT false;
ALTER TABLE rebuild_partitions ALTER COLUMN in_log_order SET DEFAULT true;
-- A rebuild in one partition already read the log in its order: its checkpoint means the same.
UPDATE rebuild_partitions SET in_log_order = true
WHERE (name, version, rebuild_id) IN (SELECT name, version, rebuild_id FROM rebuild_partitions GROUP BY 1, 2, 3 HAVING count(*) = 1);
ALTER TABLE rebuild_partitions ALTER COLUMN by_stream_hash SET DEFAULT false;
