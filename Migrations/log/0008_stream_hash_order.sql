-- A parallel rebuild's partitions each read their own streams' events and no others.
--
-- A rebuild of a per-stream projection splits the streams into partitions by hashtext(stream_id),
-- each partition a contiguous range of the hash. Within a partition the events are read in the order
-- (hashtext(stream_id), transaction_id, position): each stream's events stay in log order, and a page
-- is one range scan of the index below, from the partition's checkpoint.
-- Applied by KappaPostgres.Migrator with search_path set to the store's schema. On a large log the
-- index is built while appends wait.

CREATE INDEX events_stream_hash_idx ON events (hashtext(stream_id), transaction_id, position);

-- A page of one partition after its checkpoint (after_stream NULL: none yet), of the events after
-- the rebuild's start up to its target. The planner, whose cost model sees the index's heap order as
-- random, can prefer to fetch the partition's every remaining row and sort them, which read page by
-- page costs the square of the partition; the settings below leave it the ordered index scan.
CREATE FUNCTION log_partition_page(
    lowest integer, highest integer, after_stream text, after_xid xid8, after_position bigint,
    start_xid xid8, start_position bigint, target_xid xid8, target_position bigint, page_size integer
) RETURNS SETOF events
LANGUAGE sql STABLE
SET search_path FROM CURRENT
SET enable_sort = off
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
    SELECT * FROM events
    WHERE hashtext(stream_id) BETWEEN lowest AND highest
      AND (hashtext(stream_id), transaction_id, position)
          > (coalesce(hashtext(after_stream), lowest), after_xid, after_position)
      AND (transaction_id, position) > (start_xid, start_position)
      AND (transaction_id, position) <= (target_xid, target_position)
    ORDER BY hashtext(stream_id), transaction_id, position
    LIMIT page_size
$$;

-- Readers of the log only (Migrations/log/0005 gives PUBLIC no function of the log's).
REVOKE EXECUTE ON FUNCTION log_partition_page(integer, integer, text, xid8, bigint, xid8, bigint, xid8, bigint, integer) FROM PUBLIC;
DO $grant$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION %1$I.log_partition_page(integer, integer, text, xid8, bigint, xid8, bigint, xid8, bigint, integer) TO %2$I, %3$I',
        current_schema(), current_schema() || '_writer', current_schema() || '_reader');
END
$grant$;
