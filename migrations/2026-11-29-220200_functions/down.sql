ALTER TABLE functions DROP CONSTRAINT functions_active_deployment_fkey;
DROP TABLE deployments;
DROP TABLE archives;
DROP TABLE functions;
