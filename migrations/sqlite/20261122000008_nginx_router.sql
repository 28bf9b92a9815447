-- Environments may route traffic through a local nginx (router 'nginx'):
-- Switchyard rewrites an upstream include, runs `nginx -t` and reloads nginx.
--
-- SQLite cannot alter a CHECK constraint, so `environments` is rebuilt. Since
-- 20261122000006 it has four child tables (slots, deployments,
-- checklist_items, releases) and releases has children of its own, so the
-- create-new/copy/drop/rename rebuild of 20261122000005 would have to rebuild
-- seven tables. Instead, the table is rebuilt *under its own name* with
-- foreign keys deferred (sqlx runs this inside a transaction, where
-- `PRAGMA foreign_keys = OFF` is a no-op, but `defer_foreign_keys` works and
-- switches itself off at COMMIT):
--
--   1. copy the rows (and the AUTOINCREMENT counter) into temp tables;
--   2. DROP TABLE environments: its implicit DELETE counts one deferred
--      violation per child row that referenced it;
--   3. CREATE TABLE environments with the new definition: the children's
--      `REFERENCES environments (id)` clauses name it, unchanged;
--   4. copy the rows back with their ids: every inserted parent row
--      uncounts the child rows that match it, so the count is back to 0 and
--      COMMIT succeeds. A child row whose parent did not come back would
--      leave the count above 0 and fail the whole migration (nothing is
--      lost then: the transaction is rolled back).
--
-- This differs from 20261122000005, which renamed `environments_new`: a
-- rename does not uncount the violations, an insert into the referenced
-- table does. No child table, index or trigger is touched. Every column,
-- default and check is otherwise the table as 20261122000005 and
-- 20261122000006 left it.

PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE environments_copy AS SELECT * FROM environments;
CREATE TEMP TABLE environments_seq AS
    SELECT seq FROM sqlite_sequence WHERE name = 'environments';

DROP TABLE environments;

CREATE TABLE environments (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL UNIQUE,
    app_url            TEXT    NOT NULL,
    runtime            TEXT    NOT NULL DEFAULT 'process' CHECK (runtime IN ('process', 'docker')),
    -- Process runtime: a command line. Docker runtime: an image reference
    -- ('+' in the version becomes '-' in the tag). {version} is replaced by the
    -- release's version.
    artifact_template  TEXT    NOT NULL,
    router             TEXT    NOT NULL DEFAULT 'builtin' CHECK (router IN ('builtin', 'nginx')),
    -- Builtin router: switchyard-proxy's admin API (unused by the nginx router).
    proxy_admin_url    TEXT    NOT NULL,
    -- Path of the file holding the proxy's admin secret (the secret itself is not stored here).
    proxy_token_file   TEXT    NOT NULL,
    health_path        TEXT    NOT NULL DEFAULT '/health',
    health_interval_ms INTEGER NOT NULL DEFAULT 250,
    health_deadline_ms INTEGER NOT NULL DEFAULT 60000,
    stop_grace_ms      INTEGER NOT NULL DEFAULT 10000,
    active_color       TEXT    CHECK (active_color IN ('blue', 'green')),
    -- Last routing generation this console wrote to the router (fencing token).
    routing_generation INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL,
    -- Added by 20261122000006 (releases and checklists).
    upstream_environment TEXT,
    backup_command     TEXT,
    signoff_ttl_secs   INTEGER NOT NULL DEFAULT 86400 CHECK (signoff_ttl_secs > 0),
    -- Nginx router (all NULL for 'builtin'): the nginx executable (NULL:
    -- /usr/sbin/nginx), its main configuration (-c), its prefix (-p, NULL:
    -- compiled-in), the upstream include Switchyard owns, the master's pid
    -- file, the upstream's name (NULL: switchyard_<name>) and how long
    -- `nginx -t` / the reload may take (NULL: 10 s).
    nginx_binary       TEXT,
    nginx_conf         TEXT,
    nginx_prefix       TEXT,
    nginx_include      TEXT,
    nginx_pid_file     TEXT,
    nginx_upstream     TEXT,
    nginx_reload_timeout_ms INTEGER CHECK (nginx_reload_timeout_ms IS NULL OR nginx_reload_timeout_ms > 0),
    CHECK (router <> 'nginx'
        OR (nginx_conf IS NOT NULL AND nginx_include IS NOT NULL AND nginx_pid_file IS NOT NULL))
);

INSERT INTO environments (id, name, app_url, runtime, artifact_template, router,
    proxy_admin_url, proxy_token_file, health_path, health_interval_ms, health_deadline_ms,
    stop_grace_ms, active_color, routing_generation, created_at,
    upstream_environment, backup_command, signoff_ttl_secs)
SELECT id, name, app_url, runtime, artifact_template, router,
    proxy_admin_url, proxy_token_file, health_path, health_interval_ms, health_deadline_ms,
    stop_grace_ms, active_color, routing_generation, created_at,
    upstream_environment, backup_command, signoff_ttl_secs
FROM environments_copy ORDER BY id;

-- The counter as it was (ids of deleted environments are never reused).
DELETE FROM sqlite_sequence WHERE name = 'environments';
INSERT INTO sqlite_sequence (name, seq) SELECT 'environments', seq FROM environments_seq;

DROP TABLE environments_copy;
DROP TABLE environments_seq;
