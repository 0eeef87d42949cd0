-- The projection runtime's own tables, in the read-model database, beside the read models:
-- a checkpoint moves in the same transaction as the read-model writes it covers.
-- Applied by KappaPostgres.Migrator with search_path set to the runtime's schema.

CREATE TABLE projections (
    name                 text        NOT NULL,
    version              integer     NOT NULL,
    -- catching_up | live | stopped | failed
    state                text        NOT NULL DEFAULT 'catching_up',
    -- The last event applied, as the log orders it: (transaction id, global position).
    checkpoint_xid       xid8        NOT NULL DEFAULT '0',
    checkpoint_position  bigint      NOT NULL DEFAULT 0,
    events_applied       bigint      NOT NULL DEFAULT 0,
    -- The lease: one runner at a time. The token goes up whenever the lease changes hands, and the
    -- checkpoint update checks it, so a runner that lost its lease can never commit again (fencing).
    lease_owner          text,
    lease_token          bigint      NOT NULL DEFAULT 0,
    lease_expires_at     timestamptz,
    -- Why the projection stopped, for the `stop` poison policy.
    failed_position      bigint,
    failed_event_id      uuid,
    failed_event_type    text,
    failed_error         text,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version),
    CONSTRAINT projections_state_check CHECK (state IN ('catching_up', 'live', 'stopped', 'failed'))
);

CREATE TABLE dead_letters (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection      text        NOT NULL,
    version         integer     NOT NULL,
    event_id        uuid        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_type      text        NOT NULL,
    transaction_id  xid8        NOT NULL,
    position        bigint      NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    CONSTRAINT dead_letters_event_key UNIQUE (projection, version, event_id)
);

-- Reactors (side effects) keep their own checkpoints, apart from any projection version, so that
-- rebuilding a read model never runs them again. Same lease and fencing as projections.
CREATE TABLE reactors (
    name                 text        NOT NULL,
    version              integer     NOT NULL DEFAULT 0,
    state                text        NOT NULL DEFAULT 'catching_up',
    checkpoint_xid       xid8        NOT NULL DEFAULT '0',
    checkpoint_position  bigint      NOT NULL DEFAULT 0,
    events_applied       bigint      NOT NULL DEFAULT 0,
    lease_owner          text,
    lease_token          bigint      NOT NULL DEFAULT 0,
    lease_expires_at     timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- What an operator reads: one row per projection version.
CREATE VIEW projection_status AS
SELECT p.name, p.version, p.state,
       p.checkpoint_xid::text || '/' || p.checkpoint_position AS checkpoint,
       p.checkpoint_position, p.events_applied,
       p.lease_owner, p.lease_expires_at,
       (SELECT count(*) FROM dead_letters d
         WHERE d.projection = p.name AND d.version = p.version AND d.resolved_at IS NULL) AS dead_letters,
       p.failed_position, p.failed_event_type, p.failed_error, p.updated_at
FROM projections p;
