-- Shared plumbing and service tiers.
--
-- Conventions for every migration: TIMESTAMPTZ with DEFAULT now(); enumerations are TEXT with a CHECK
-- (not PostgreSQL enums, so expand/contract stays a plain ALTER); every foreign-key column is the leading
-- column of an index (a test in crates/db checks this); tables with `updated_at` use set_updated_at().

-- Keeps `updated_at` current on every UPDATE that changes the row, unless the statement sets it itself.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TABLE tiers (
    id                     UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name                   TEXT NOT NULL CONSTRAINT tiers_name_not_empty CHECK (name <> ''),
    description            TEXT,
    max_functions          INTEGER NOT NULL DEFAULT 10   CHECK (max_functions >= 0),
    max_archive_mb         INTEGER NOT NULL DEFAULT 50   CHECK (max_archive_mb > 0),
    max_memory_mb          INTEGER NOT NULL DEFAULT 128  CHECK (max_memory_mb > 0),
    max_timeout_s          INTEGER NOT NULL DEFAULT 5    CHECK (max_timeout_s > 0),
    max_concurrency        INTEGER NOT NULL DEFAULT 10   CHECK (max_concurrency > 0),
    invocations_per_minute INTEGER NOT NULL DEFAULT 600  CHECK (invocations_per_minute > 0),
    min_warm               INTEGER NOT NULL DEFAULT 0    CHECK (min_warm >= 0),
    log_retention_days     INTEGER NOT NULL DEFAULT 30   CHECK (log_retention_days > 0),
    network_egress         BOOLEAN NOT NULL DEFAULT false,
    max_request_body_mb    INTEGER NOT NULL DEFAULT 6    CHECK (max_request_body_mb > 0),
    cpu_millicores         INTEGER NOT NULL DEFAULT 500  CHECK (cpu_millicores > 0),
    is_default             BOOLEAN NOT NULL DEFAULT false,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT tiers_name_key UNIQUE (name)
);
COMMENT ON TABLE tiers IS 'Service tiers: the limits cloud-api enforces. A user''s tier is their organization''s, else their own, else the default tier.';
COMMENT ON COLUMN tiers.is_default IS 'The tier of users with neither their own tier nor an organization''s; at most one row (partial unique index).';
COMMENT ON COLUMN tiers.max_request_body_mb IS 'Largest invocation request body.';
COMMENT ON COLUMN tiers.cpu_millicores IS 'CPU quota of one function instance, in thousandths of a core.';

-- At most one default tier.
CREATE UNIQUE INDEX tiers_one_default_idx ON tiers (is_default) WHERE is_default;

CREATE TRIGGER tiers_set_updated_at BEFORE UPDATE ON tiers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The default tier with the SPEC's defaults: 128 MB, 5 s, 50 MB archives, 30 days of logs, no egress.
INSERT INTO tiers (name, description, max_functions, max_archive_mb, max_memory_mb, max_timeout_s,
                   max_concurrency, invocations_per_minute, min_warm, log_retention_days, network_egress,
                   max_request_body_mb, cpu_millicores, is_default)
VALUES ('free', 'Default tier', 10, 50, 128, 5, 10, 600, 0, 30, false, 6, 500, true);
