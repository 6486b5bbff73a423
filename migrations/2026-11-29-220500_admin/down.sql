DROP TABLE logs;
DROP TABLE audit_log;
DROP TABLE platform_settings;
DROP TABLE early_access_requests;
