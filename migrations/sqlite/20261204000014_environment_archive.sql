-- Archiving an environment (issue 14): it leaves every list and lookup by
-- name, its slots are stopped, and its deployments, releases and audit
-- entries stay. The name stays taken (history refers to it).
ALTER TABLE environments ADD COLUMN archived_at TEXT;
ALTER TABLE environments ADD COLUMN archived_by TEXT;
