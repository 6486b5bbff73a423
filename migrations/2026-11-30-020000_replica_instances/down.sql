DROP TABLE replica_instances;
