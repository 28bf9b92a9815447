-- PostgreSQL translation of migrations/sqlite/20261122000005_docker_runtime.sql.
--
-- Environments may now run their slots as Docker containers (runtime 'docker').
-- SQLite rebuilds environments, slots and deployments to widen the CHECK;
-- PostgreSQL alters the constraint in place. Nothing else changes (the
-- rebuild's columns, defaults, checks, keys and indexes are those of
-- 20261122000001_initial.sql), and identity counters are untouched.
-- Process runtime: a command line. Docker runtime: an image reference ('+' in
-- the version becomes '-' in the tag). {version} is replaced by the release's
-- version. For docker, a slot's handle is the container id.
ALTER TABLE environments
    DROP CONSTRAINT environments_runtime_check,
    ADD CONSTRAINT environments_runtime_check CHECK (runtime IN ('process', 'docker'));
