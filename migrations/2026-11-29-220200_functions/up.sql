-- Functions, their uploaded archives (by content hash) and their deployments (versions 1, 2, 3…).

CREATE TABLE functions (
    id                       UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id                 UUID NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    name                     TEXT NOT NULL CONSTRAINT functions_name_not_empty CHECK (name <> ''),
    status                   TEXT NOT NULL DEFAULT 'init'
                             CONSTRAINT functions_status_check
                             CHECK (status IN ('init', 'building', 'active', 'failed', 'pending_deletion', 'deleted')),
    skip_signing             BOOLEAN NOT NULL DEFAULT false,
    runtime                  TEXT,
    active_deployment_id     UUID,
    env_ciphertext           BYTEA,
    env_nonce                BYTEA,
    deletion_requested_at    TIMESTAMPTZ,
    deletion_scheduled_for   TIMESTAMPTZ,
    deletion_status          TEXT NOT NULL DEFAULT 'none'
                             CONSTRAINT functions_deletion_status_check
                             CHECK (deletion_status IN ('none', 'pending', 'in_progress', 'failed', 'done')),
    deletion_error           TEXT,
    deletion_attempts        INTEGER NOT NULL DEFAULT 0 CHECK (deletion_attempts >= 0),
    deletion_next_attempt_at TIMESTAMPTZ,
    previous_status          TEXT
                             CONSTRAINT functions_previous_status_check
                             CHECK (previous_status IN ('init', 'building', 'active', 'failed')),
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT functions_owner_id_name_key UNIQUE (owner_id, name),
    CONSTRAINT functions_env_consistent CHECK ((env_ciphertext IS NULL) = (env_nonce IS NULL))
);
COMMENT ON TABLE functions IS 'Functions: a name per owner, a status, and the pointer to the active deployment.';
COMMENT ON COLUMN functions.skip_signing IS 'A public function: anyone may invoke it (still rate limited).';
COMMENT ON COLUMN functions.active_deployment_id IS 'The deployment serving invocations; always one of this function''s deployments (composite foreign key).';
COMMENT ON COLUMN functions.env_ciphertext IS 'The environment variables as JSON, encrypted with AES-256-GCM under the configured key.';
COMMENT ON COLUMN functions.env_nonce IS 'The AES-GCM nonce of env_ciphertext.';
COMMENT ON COLUMN functions.deletion_scheduled_for IS 'When the deletion worker may delete the function (end of the grace period).';
COMMENT ON COLUMN functions.deletion_next_attempt_at IS 'Backoff: the worker retries a failed deletion no earlier than this.';
COMMENT ON COLUMN functions.previous_status IS 'The status to return to when a pending deletion is cancelled.';

CREATE INDEX functions_owner_id_created_at_idx ON functions (owner_id, created_at DESC, id DESC);
CREATE INDEX functions_active_deployment_id_idx ON functions (active_deployment_id);
-- The deletion worker's queue.
CREATE INDEX functions_deletion_due_idx ON functions (deletion_scheduled_for)
    WHERE deletion_status IN ('pending', 'failed');
CREATE TRIGGER functions_set_updated_at BEFORE UPDATE ON functions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Uploaded archives, stored on disk by content hash; identical uploads share one row and one file.
CREATE TABLE archives (
    sha256     TEXT PRIMARY KEY CONSTRAINT archives_sha256_hex CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    format     TEXT NOT NULL CONSTRAINT archives_format_check CHECK (format IN ('zip', 'tar.gz')),
    size_bytes BIGINT NOT NULL CHECK (size_bytes >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE deployments (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    function_id        UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    version            INTEGER NOT NULL CHECK (version > 0),
    status             TEXT NOT NULL DEFAULT 'building'
                       CONSTRAINT deployments_status_check
                       CHECK (status IN ('building', 'active', 'superseded', 'failed')),
    is_active          BOOLEAN NOT NULL DEFAULT false,
    archive_sha256     TEXT NOT NULL REFERENCES archives (sha256) ON DELETE RESTRICT,
    runtime            TEXT,
    image_id           TEXT,
    image_digest       TEXT,
    image_tag          TEXT,
    build_log          TEXT,
    error              TEXT,
    build_attempts     INTEGER NOT NULL DEFAULT 0 CHECK (build_attempts >= 0),
    build_claimed_by   TEXT,
    build_heartbeat_at TIMESTAMPTZ,
    build_started_at   TIMESTAMPTZ,
    build_finished_at  TIMESTAMPTZ,
    build_duration_ms  INTEGER CHECK (build_duration_ms >= 0),
    activated_at       TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT deployments_function_id_version_key UNIQUE (function_id, version),
    -- Target of functions.active_deployment_id, so a function can only point at its own deployment.
    CONSTRAINT deployments_function_id_id_key UNIQUE (function_id, id),
    CONSTRAINT deployments_active_consistent CHECK (is_active = (status = 'active'))
);
COMMENT ON COLUMN deployments.status IS 'building (queued or running), active (serving), superseded (built, not serving), failed.';
COMMENT ON COLUMN deployments.build_claimed_by IS 'The replica running the build; with build_heartbeat_at it tells a live build from one cut off by a restart.';

-- One active deployment per function.
CREATE UNIQUE INDEX deployments_one_active_idx ON deployments (function_id) WHERE is_active;
CREATE INDEX deployments_archive_sha256_idx ON deployments (archive_sha256);
-- The build queue.
CREATE INDEX deployments_building_idx ON deployments (created_at) WHERE status = 'building';

ALTER TABLE functions
    ADD CONSTRAINT functions_active_deployment_fkey
    FOREIGN KEY (id, active_deployment_id) REFERENCES deployments (function_id, id);
