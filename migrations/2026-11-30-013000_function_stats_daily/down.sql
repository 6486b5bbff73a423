DROP TABLE function_stats_daily;
