-- Early access, platform settings, the admin audit log and system events.

CREATE TABLE early_access_requests (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email       TEXT NOT NULL CONSTRAINT early_access_requests_email_not_empty CHECK (email <> ''),
    name        TEXT NOT NULL DEFAULT '',
    reason      TEXT,
    status      TEXT NOT NULL DEFAULT 'pending'
                CONSTRAINT early_access_requests_status_check CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by  TEXT,
    decided_at  TIMESTAMPTZ,
    invited_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON COLUMN early_access_requests.decided_by IS 'Subject of the admin who approved or rejected it.';
COMMENT ON COLUMN early_access_requests.invited_at IS 'When the invitation mail was sent.';
CREATE UNIQUE INDEX early_access_requests_email_key ON early_access_requests (lower(email));
CREATE INDEX early_access_requests_status_created_at_idx ON early_access_requests (status, created_at);
CREATE TRIGGER early_access_requests_set_updated_at BEFORE UPDATE ON early_access_requests
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Platform-wide settings: exactly one row (id = 1), one typed column per setting.
CREATE TABLE platform_settings (
    id                    SMALLINT PRIMARY KEY DEFAULT 1 CONSTRAINT platform_settings_singleton CHECK (id = 1),
    registration_open     BOOLEAN NOT NULL DEFAULT true,
    early_access_capacity INTEGER CHECK (early_access_capacity >= 0),
    updated_by            TEXT,
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON COLUMN platform_settings.registration_open IS 'true: anyone may register; false: only approved early-access emails, within capacity.';
COMMENT ON COLUMN platform_settings.early_access_capacity IS 'How many early-access requests may be approved; NULL means no limit.';
CREATE TRIGGER platform_settings_set_updated_at BEFORE UPDATE ON platform_settings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
INSERT INTO platform_settings (id) VALUES (1);

-- Every admin write, written in the same transaction as the change.
CREATE TABLE audit_log (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_subject  TEXT NOT NULL,
    actor_username TEXT,
    actor_role     TEXT,
    action         TEXT NOT NULL,
    target_type    TEXT NOT NULL,
    target_id      TEXT,
    details        JSONB NOT NULL DEFAULT '{}',
    request_id     TEXT,
    client_addr    TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON COLUMN audit_log.actor_subject IS 'The admin''s subject: the Keycloak sub, or the built-in admin user''s id.';
CREATE INDEX audit_log_created_at_idx ON audit_log (created_at DESC);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, created_at DESC);
CREATE INDEX audit_log_actor_subject_idx ON audit_log (actor_subject, created_at DESC);

-- System events of both services (the original's `logs` table), read by admin observability.
CREATE TABLE logs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    level      TEXT NOT NULL CONSTRAINT logs_level_check CHECK (level IN ('debug', 'info', 'warn', 'error')),
    action     TEXT NOT NULL,
    message    JSONB NOT NULL,
    service    TEXT,
    request_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX logs_created_at_idx ON logs (created_at DESC);
CREATE INDEX logs_level_created_at_idx ON logs (level, created_at DESC);
CREATE INDEX logs_action_created_at_idx ON logs (action, created_at DESC);
