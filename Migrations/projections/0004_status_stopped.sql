-- A version nobody runs reads as stopped: the state column keeps what its last runner wrote (a
-- runner that crashed cannot write anything), so the status view derives `stopped` from the lease —
-- released (a graceful shutdown) or expired (a crash). A failed version stays failed.
-- Applied by KappaPostgres.Migrator with search_path set to the runtime's schema.
CREATE OR REPLACE VIEW projection_status AS
SELECT p.name, p.version,
       CASE WHEN p.state <> 'failed' AND (p.lease_owner IS NULL OR p.lease_expires_at < now())
            THEN 'stopped' ELSE p.state END AS state,
       p.checkpoint_xid::text || '/' || p.checkpoint_position AS checkpoint,
       p.checkpoint_position, p.events_applied,
       p.lease_owner, p.lease_expires_at,
       (SELECT count(*) FROM dead_letters d
         WHERE d.projection = p.name AND d.version = p.version AND d.resolved_at IS NULL) AS dead_letters,
       p.failed_position, p.failed_event_type, p.failed_error, p.updated_at,
       p.lifecycle, p.promoted_at, p.retired_at
FROM projections p;
