-- Users, organizations, and the built-in identity provider's state (sessions, refresh tokens,
-- password-reset tokens, email-verification codes, login throttling, authentication audit events).

CREATE TABLE users (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email               TEXT NOT NULL CONSTRAINT users_email_not_empty CHECK (email <> ''),
    password_hash       TEXT,
    first_name          TEXT NOT NULL DEFAULT '',
    last_name           TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL DEFAULT 'active'
                        CONSTRAINT users_status_check CHECK (status IN ('active', 'blocked', 'deleted')),
    temporary_password  BOOLEAN NOT NULL DEFAULT false,
    keycloak_user_id    TEXT,
    is_email_verified   BOOLEAN NOT NULL DEFAULT false,
    onboarding_complete BOOLEAN NOT NULL DEFAULT false,
    tier_id             UUID REFERENCES tiers (id) ON DELETE RESTRICT,
    admin_role          TEXT
                        CONSTRAINT users_admin_role_check CHECK (admin_role IN ('full_admin', 'viewer')),
    last_login_at       TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    blocked_at          TIMESTAMPTZ,
    deleted_at          TIMESTAMPTZ,
    CONSTRAINT users_keycloak_user_id_key UNIQUE (keycloak_user_id)
);
COMMENT ON TABLE users IS 'Platform users. Keycloak (or the built-in provider) owns credentials; this row owns status, tier and ownership.';
COMMENT ON COLUMN users.email IS 'Unique case-insensitively (index users_email_key on lower(email)).';
COMMENT ON COLUMN users.password_hash IS 'BCrypt hash of a user of the original platform (cleared on auto-migration to Keycloak), or the argon2id hash of the built-in provider; NULL when Keycloak holds the credential.';
COMMENT ON COLUMN users.keycloak_user_id IS 'The Keycloak user id (sub) this row is linked to; NULL for legacy and built-in users.';
COMMENT ON COLUMN users.tier_id IS 'The user''s own tier; NULL means the organization''s tier, else the default tier.';
COMMENT ON COLUMN users.admin_role IS 'Admin role in built-in mode (set by `create-admin`); unused with Keycloak, where roles live in tokens.';

CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_tier_id_idx ON users (tier_id);
CREATE INDEX users_status_created_at_idx ON users (status, created_at DESC);
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE organizations (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name        TEXT NOT NULL CONSTRAINT organizations_name_not_empty CHECK (name <> ''),
    description TEXT,
    owner_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    tier_id     UUID REFERENCES tiers (id) ON DELETE RESTRICT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON COLUMN organizations.tier_id IS 'The tier of every member; NULL means each member''s own tier, else the default.';
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));
CREATE INDEX organizations_owner_id_idx ON organizations (owner_id);
CREATE INDEX organizations_tier_id_idx ON organizations (tier_id);
CREATE TRIGGER organizations_set_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE organization_members (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL DEFAULT 'member'
                    CONSTRAINT organization_members_role_check CHECK (role IN ('owner', 'member')),
    joined_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id),
    -- A user is in at most one organization.
    CONSTRAINT organization_members_user_id_key UNIQUE (user_id)
);

-- Feature roles of the built-in provider (with Keycloak they are client roles there).
CREATE TABLE user_feature_roles (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CONSTRAINT user_feature_roles_role_not_empty CHECK (role <> ''),
    granted_by TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);
COMMENT ON COLUMN user_feature_roles.granted_by IS 'Subject of the admin who granted it.';

-- Built-in provider: one row per login session (cloud-api or admin-api).
CREATE TABLE auth_sessions (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client       TEXT NOT NULL DEFAULT 'cloud-api'
                 CONSTRAINT auth_sessions_client_check CHECK (client IN ('cloud-api', 'admin-api')),
    client_addr  TEXT,
    user_agent   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ,
    end_reason   TEXT
                 CONSTRAINT auth_sessions_end_reason_check
                 CHECK (end_reason IN ('logout', 'refresh_reuse', 'expired', 'blocked', 'deleted',
                                       'password_reset', 'admin')),
    CONSTRAINT auth_sessions_end_consistent CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE INDEX auth_sessions_user_id_idx ON auth_sessions (user_id);

-- Built-in provider: opaque rotating refresh tokens, stored as SHA-256 of the token.
CREATE TABLE refresh_tokens (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id UUID NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);
COMMENT ON COLUMN refresh_tokens.used_at IS 'Set when rotated; presenting a used token again ends the session (reuse detection).';
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

-- Built-in provider: single-use password-reset tokens, stored as SHA-256 of the token.
CREATE TABLE password_reset_tokens (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT password_reset_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX password_reset_tokens_user_id_idx ON password_reset_tokens (user_id);
CREATE INDEX password_reset_tokens_expires_at_idx ON password_reset_tokens (expires_at);

-- Deprecated email verification: six-digit codes, stored hashed, 15-minute expiry, at most 5 attempts.
CREATE TABLE email_verification_codes (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX email_verification_codes_user_id_idx ON email_verification_codes (user_id, created_at DESC);
CREATE INDEX email_verification_codes_expires_at_idx ON email_verification_codes (expires_at);

-- Login throttling: one row per attempt; failures are counted per account and per client address
-- over a sliding window. A worker drops old rows (index on created_at).
CREATE TABLE login_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       TEXT NOT NULL,
    client_addr TEXT,
    succeeded   BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON COLUMN login_attempts.email IS 'The account key: the email as typed, lower-cased.';
CREATE INDEX login_attempts_email_created_at_idx ON login_attempts (email, created_at DESC);
CREATE INDEX login_attempts_client_addr_created_at_idx ON login_attempts (client_addr, created_at DESC);
CREATE INDEX login_attempts_created_at_idx ON login_attempts (created_at);

-- Authentication audit trail (never a password or token). admin-api reads it.
CREATE TABLE auth_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     UUID REFERENCES users (id) ON DELETE SET NULL,
    event       TEXT NOT NULL
                CONSTRAINT auth_events_event_check
                CHECK (event IN ('register', 'login_succeeded', 'login_failed', 'refresh', 'refresh_reuse',
                                 'logout', 'password_reset_requested', 'password_reset_completed',
                                 'email_verification_sent', 'email_verified', 'auto_migration',
                                 'account_refused')),
    reason      TEXT,
    client_addr TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX auth_events_user_id_idx ON auth_events (user_id, created_at DESC);
CREATE INDEX auth_events_created_at_idx ON auth_events (created_at DESC);
CREATE INDEX auth_events_event_created_at_idx ON auth_events (event, created_at DESC);
