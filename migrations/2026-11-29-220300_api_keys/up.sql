-- API keys of functions (secrets encrypted at rest) and the replay-protection nonces of signed requests.

CREATE TABLE api_keys (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    function_id       UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    name              TEXT,
    key_prefix        TEXT NOT NULL,
    secret_ciphertext BYTEA NOT NULL,
    secret_nonce      BYTEA NOT NULL,
    validity          TEXT NOT NULL
                      CONSTRAINT api_keys_validity_check CHECK (validity IN ('1h', '1d', '1w', '1m', 'forever')),
    expires_at        TIMESTAMPTZ,
    is_active         BOOLEAN NOT NULL DEFAULT true,
    revoked_at        TIMESTAMPTZ,
    last_used_at      TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_expiry_consistent CHECK ((validity = 'forever') = (expires_at IS NULL))
);
COMMENT ON COLUMN api_keys.id IS 'The public key id, sent as X-Api-Key.';
COMMENT ON COLUMN api_keys.key_prefix IS 'The first characters of the secret as shown once (its fixed prefix included), to recognise a key; never enough to sign.';
COMMENT ON COLUMN api_keys.secret_ciphertext IS 'The secret text, encrypted with AES-256-GCM under the configured key.';
COMMENT ON COLUMN api_keys.secret_nonce IS 'The AES-GCM nonce of secret_ciphertext.';
COMMENT ON COLUMN api_keys.expires_at IS 'NULL exactly when validity is forever.';
CREATE INDEX api_keys_function_id_idx ON api_keys (function_id, created_at DESC);
CREATE TRIGGER api_keys_set_updated_at BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Nonces (and v0 signatures) seen within the signature window, shared by every replica:
-- `INSERT … ON CONFLICT DO NOTHING` is the one-round-trip replay check; a worker deletes expired rows.
CREATE TABLE nonces (
    api_key_id UUID NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    nonce      TEXT NOT NULL CONSTRAINT nonces_nonce_length CHECK (char_length(nonce) BETWEEN 1 AND 128),
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (api_key_id, nonce)
);
CREATE INDEX nonces_expires_at_idx ON nonces (expires_at);
