-- Function-instance counts that each cloud-api replica publishes every few seconds, so admin-api
-- (which never talks to Podman) can show running and warm instances. A replica's row is replaced
-- at each report and removed at shutdown; a row not refreshed lately is a replica that died.
CREATE TABLE replica_instances (
    replica     TEXT PRIMARY KEY CONSTRAINT replica_instances_replica_not_empty CHECK (replica <> ''),
    running     INTEGER NOT NULL CHECK (running >= 0),
    paused      INTEGER NOT NULL CHECK (paused >= 0),
    reported_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON TABLE replica_instances IS 'Function instances per cloud-api replica (containers labelled containerpub.replica), as last reported.';
COMMENT ON COLUMN replica_instances.running IS 'Unpaused instances: serving a call, or idle before the pause.';
COMMENT ON COLUMN replica_instances.paused IS 'Paused (warm) instances, unpaused on the next call.';
