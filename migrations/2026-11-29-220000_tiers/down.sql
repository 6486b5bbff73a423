DROP TABLE tiers;
DROP FUNCTION set_updated_at();
