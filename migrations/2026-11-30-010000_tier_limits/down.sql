ALTER TABLE deployments DROP COLUMN timeout_s, DROP COLUMN memory_mb;
DROP TABLE rate_counters;
