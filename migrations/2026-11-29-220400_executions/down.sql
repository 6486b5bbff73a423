DROP TABLE function_stats_hourly;
DROP TABLE execution_logs;
DROP TABLE executions;
