-- Which runtime instance holds a lease, beside the configured owner name that status shows: two
-- processes configured with the same owner are still two holders, so neither can take the other's
-- lease before it expires, and every acquisition gets a token of its own.
-- Applied by KappaPostgres.Migrator with search_path set to the runtime's schema.
ALTER TABLE projections ADD COLUMN lease_holder text;
ALTER TABLE reactors ADD COLUMN lease_holder text;
