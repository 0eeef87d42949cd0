-- Parallel rebuilds read the log once in its order and split it by stream in the client
-- (Migrations/projections/0008): nothing reads by stream hash any more. The index and its page
-- function go, and an append writes one index entry fewer, at a random place in an index as large
-- as the log (8 writers inserting the log's row shape, pgbench, fsync on: 12,739 rows/s with it,
-- 14,257 without, three alternating rounds each).
-- Applied by KappaPostgres.Migrator with search_path set to the store's schema. Dropping the index
-- waits for the appends and reads in flight, and holds the next ones for a moment.
DROP FUNCTION log_partition_page(integer, integer, text, xid8, bigint, xid8, bigint, xid8, bigint, integer);
DROP INDEX events_stream_hash_idx;
