-- Projection versions side by side: each version's lifecycle, the one active version per name, and
-- the checkpoints of a bulk (optionally parallel) rebuild.
-- Applied by KappaPostgres.Migrator with search_path set to the runtime's schema.

-- building → caught_up → active → retired → dropped (rollback makes a retired version active again).
ALTER TABLE projections
    ADD COLUMN lifecycle text NOT NULL DEFAULT 'building',
    ADD COLUMN promoted_at timestamptz,
    ADD COLUMN retired_at timestamptz,
    -- A bulk rebuild in progress: every partition applies the log up to this position, then the
    -- version's checkpoint jumps there and live following carries on.
    ADD COLUMN rebuild_target_xid xid8,
    ADD COLUMN rebuild_target_position bigint,
    ADD COLUMN rebuild_partitions integer,
    -- Which rebuild the partitions belong to: workers of an earlier rebuild of the version are fenced out.
    ADD COLUMN rebuild_id bigint,
    ADD CONSTRAINT projections_lifecycle_check CHECK (lifecycle IN ('building', 'caught_up', 'active', 'retired', 'dropped'));

ALTER TABLE projections DROP CONSTRAINT projections_state_check;
ALTER TABLE projections ADD CONSTRAINT projections_state_check
    CHECK (state IN ('rebuilding', 'catching_up', 'live', 'stopped', 'failed'));

-- At most one active version per projection: a switch that crashed half-way cannot leave two.
CREATE UNIQUE INDEX projections_one_active ON projections (name) WHERE lifecycle = 'active';

-- One row per partition of a rebuild in progress; its checkpoint moves in the transaction of its
-- writes. Workers of any process claim partitions by lease, fenced by the token like a version.
CREATE SEQUENCE rebuild_ids;

CREATE TABLE rebuild_partitions (
    name                 text        NOT NULL,
    version              integer     NOT NULL,
    partition            integer     NOT NULL,
    rebuild_id           bigint      NOT NULL,
    checkpoint_xid       xid8        NOT NULL,
    checkpoint_position  bigint      NOT NULL,
    events_applied       bigint      NOT NULL DEFAULT 0,
    done                 boolean     NOT NULL DEFAULT false,
    lease_owner          text,
    lease_token          bigint      NOT NULL DEFAULT 0,
    lease_expires_at     timestamptz,
    PRIMARY KEY (name, version, partition)
);

-- One row per rebuild loading UNLOGGED tables, itself UNLOGGED: a crash or a failover empties both,
-- so a missing row tells the next runner that the tables it would go on with were emptied.
CREATE UNLOGGED TABLE rebuild_sentinels (
    name        text    NOT NULL,
    version     integer NOT NULL,
    rebuild_id  bigint  NOT NULL,
    PRIMARY KEY (name, version)
);

-- Every switch of the stable names, for operators and for rollback.
CREATE TABLE switches (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text        NOT NULL,
    from_version  integer,
    to_version    integer     NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('promote', 'rollback')),
    switched_at   timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE VIEW projection_status AS
SELECT p.name, p.version, p.state,
       p.checkpoint_xid::text || '/' || p.checkpoint_position AS checkpoint,
       p.checkpoint_position, p.events_applied,
       p.lease_owner, p.lease_expires_at,
       (SELECT count(*) FROM dead_letters d
         WHERE d.projection = p.name AND d.version = p.version AND d.resolved_at IS NULL) AS dead_letters,
       p.failed_position, p.failed_event_type, p.failed_error, p.updated_at,
       p.lifecycle, p.promoted_at, p.retired_at
FROM projections p;
