-- The runtimes sharing this schema, so that live projection versions are spread over them
-- (ProjectionRuntime.Configuration.balancesLeases). Each runtime renews its row every third of its
-- lease duration with the versions it runs, and deletes it when it stops; a row past expires_at is a
-- runtime that died, and is not counted.
-- Applied by KappaPostgres.Migrator with search_path set to the runtime's schema.
CREATE TABLE runtime_members (
    holder      text        PRIMARY KEY,  -- the runtime instance, as projections.lease_holder
    owner       text        NOT NULL,     -- its configured owner name
    names       text[]      NOT NULL,     -- the versions it runs: names[i] version versions[i]
    versions    integer[]   NOT NULL,
    joined_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
