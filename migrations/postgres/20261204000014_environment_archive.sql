-- PostgreSQL translation of migrations/sqlite/20261204000014_environment_archive.sql.
--
-- Archiving an environment (issue 14): it leaves every list and lookup by
-- name, its slots are stopped, and its deployments, releases and audit
-- entries stay. The name stays taken (history refers to it).
--
-- `archived_at` stays TEXT: the engine writes it as a string
-- (engine::audit::timestamp), reads it as one and sorts by it.
ALTER TABLE environments ADD COLUMN archived_at TEXT;
ALTER TABLE environments ADD COLUMN archived_by TEXT;
