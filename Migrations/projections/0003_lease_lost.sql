-- Fencing for single-statement batches (SingleStatementProjection): such a batch's writes and its
-- fenced checkpoint move are one statement, with no transaction block to roll back, so when the
-- move matches no row (the lease changed hands, or the checkpoint is no longer where the batch began)
-- the statement fails through this function, and the writes with it. SQLSTATE KL001 tells the runner
-- to take its lease again.
-- Applied by KappaPostgres.Migrator with search_path set to the runtime's schema.
CREATE FUNCTION lease_lost(projection text, version integer) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the lease on projection % v% is no longer held by this runner, or its checkpoint moved', projection, version
        USING ERRCODE = 'KL001';
END
$$;
