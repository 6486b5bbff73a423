-- Tier enforcement: rate counters shared by every replica, and the memory and timeout a deployment
-- asked for (within its owner's tier).

-- Fixed-window counters: one row per (scope, subject, window); a request increments its row in one
-- statement (INSERT … ON CONFLICT DO UPDATE … RETURNING), so every replica sees the same count.
-- UNLOGGED: no WAL, so the increment on the invoke path costs no WAL flush at commit; a PostgreSQL
-- crash empties the table, which only forgets the current minute's counts.
CREATE UNLOGGED TABLE rate_counters (
    scope        TEXT NOT NULL CONSTRAINT rate_counters_scope_not_empty CHECK (scope <> ''),
    subject      TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    count        INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
    CONSTRAINT rate_counters_pkey PRIMARY KEY (scope, subject, window_start)
);
COMMENT ON TABLE rate_counters IS 'Fixed-window rate counters (invocations per function per minute, early-access requests per client address); old windows are pruned.';
COMMENT ON COLUMN rate_counters.scope IS 'What is counted, e.g. invoke or early_access.';
COMMENT ON COLUMN rate_counters.subject IS 'Who or what is counted: a function id, a client address.';
-- The pruning of old windows.
CREATE INDEX rate_counters_window_start_idx ON rate_counters (window_start);

ALTER TABLE deployments
    ADD COLUMN memory_mb INTEGER CONSTRAINT deployments_memory_mb_positive CHECK (memory_mb > 0),
    ADD COLUMN timeout_s INTEGER CONSTRAINT deployments_timeout_s_positive CHECK (timeout_s > 0);
COMMENT ON COLUMN deployments.memory_mb IS 'Memory the deploy asked for; NULL: the tier''s maximum. Capped by the owner''s current tier at every invocation.';
COMMENT ON COLUMN deployments.timeout_s IS 'Timeout the deploy asked for; NULL: the tier''s maximum. Capped by the owner''s current tier at every invocation.';
