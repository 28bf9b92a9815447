-- PostgreSQL translation of migrations/sqlite/20261204000015_docker_settings.sql.
--
-- What a Docker environment's containers get besides their image (issue 14):
-- the port the service listens on inside the container, mounts (one
-- `source:target[:ro]` per line), memory and CPU limits, a restart policy, a
-- network, and how to log in to the registry a missing image is pulled from:
-- a user name and the name of one of the environment's secrets holding the
-- password (never the password itself). Process environments ignore them.
ALTER TABLE environments ADD COLUMN container_port BIGINT NOT NULL DEFAULT 8080
    CHECK (container_port BETWEEN 1 AND 65535);
ALTER TABLE environments ADD COLUMN docker_volumes TEXT NOT NULL DEFAULT '';
ALTER TABLE environments ADD COLUMN docker_memory_mb BIGINT
    CHECK (docker_memory_mb IS NULL OR docker_memory_mb >= 6);
ALTER TABLE environments ADD COLUMN docker_cpus DOUBLE PRECISION
    CHECK (docker_cpus IS NULL OR docker_cpus > 0);
ALTER TABLE environments ADD COLUMN docker_restart TEXT NOT NULL DEFAULT 'no';
ALTER TABLE environments ADD COLUMN docker_network TEXT;
ALTER TABLE environments ADD COLUMN docker_registry_user TEXT;
ALTER TABLE environments ADD COLUMN docker_registry_secret TEXT;
