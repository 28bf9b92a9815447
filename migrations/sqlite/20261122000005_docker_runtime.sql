-- Environments may now run their slots as Docker containers (runtime 'docker').
--
-- SQLite cannot alter a CHECK constraint, so `environments` is rebuilt the
-- standard way (create new, copy, drop old, rename). The catch: sqlx runs every
-- SQLite migration inside a transaction, where `PRAGMA foreign_keys = OFF` is a
-- no-op, and the store opens connections with foreign keys ON. Dropping
-- `environments` while `slots` and `deployments` still reference it would then
-- count a violation per child row and fail at COMMIT (even with
-- `defer_foreign_keys`, because renaming the new table does not clear the
-- count). So the two child tables are rebuilt with it, pointing at the new
-- parent from the start; children are dropped before the parent, so no row is
-- ever orphaned and foreign keys stay enforced for the whole migration. When
-- the new parent is renamed, SQLite rewrites the children's REFERENCES clauses
-- to the final name. Every column, default, check and index is otherwise
-- identical to 20261122000001_initial.sql; ids are copied and so is each
-- AUTOINCREMENT counter, so no id is ever handed out twice (the audit log
-- names deployments by id).

CREATE TABLE environments_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL UNIQUE,
    app_url            TEXT    NOT NULL,
    runtime            TEXT    NOT NULL DEFAULT 'process' CHECK (runtime IN ('process', 'docker')),
    -- Process runtime: a command line. Docker runtime: an image reference
    -- ('+' in the version becomes '-' in the tag). {version} is replaced by the
    -- release's version.
    artifact_template  TEXT    NOT NULL,
    router             TEXT    NOT NULL DEFAULT 'builtin' CHECK (router IN ('builtin')),
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
    created_at         TEXT    NOT NULL
);

INSERT INTO environments_new (id, name, app_url, runtime, artifact_template, router,
    proxy_admin_url, proxy_token_file, health_path, health_interval_ms, health_deadline_ms,
    stop_grace_ms, active_color, routing_generation, created_at)
SELECT id, name, app_url, runtime, artifact_template, router,
    proxy_admin_url, proxy_token_file, health_path, health_interval_ms, health_deadline_ms,
    stop_grace_ms, active_color, routing_generation, created_at
FROM environments;

CREATE TABLE slots_new (
    environment_id      INTEGER NOT NULL REFERENCES environments_new (id),
    color               TEXT    NOT NULL CHECK (color IN ('blue', 'green')),
    version             TEXT,
    state               TEXT    NOT NULL DEFAULT 'stopped'
                        CHECK (state IN ('stopped', 'starting', 'healthy', 'unhealthy', 'draining')),
    -- Runtime handle: a pid for the process runtime, a container id for docker.
    handle              TEXT,
    address             TEXT,
    last_health_ok      INTEGER,
    last_health_message TEXT,
    last_health_at      TEXT,
    updated_at          TEXT    NOT NULL,
    PRIMARY KEY (environment_id, color)
);

INSERT INTO slots_new (environment_id, color, version, state, handle, address,
    last_health_ok, last_health_message, last_health_at, updated_at)
SELECT environment_id, color, version, state, handle, address,
    last_health_ok, last_health_message, last_health_at, updated_at
FROM slots;

CREATE TABLE deployments_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id INTEGER NOT NULL REFERENCES environments_new (id),
    kind           TEXT    NOT NULL CHECK (kind IN ('deploy', 'rollback', 'switch')),
    status         TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    from_version   TEXT,
    to_version     TEXT,
    from_slot      TEXT,
    to_slot        TEXT,
    -- NULL means the system itself (bootstrap, automatic rollback).
    requested_by   INTEGER REFERENCES users (id),
    reason         TEXT,
    message        TEXT,
    started_at     TEXT    NOT NULL,
    finished_at    TEXT,
    duration_ms    INTEGER
);

INSERT INTO deployments_new (id, environment_id, kind, status, from_version, to_version,
    from_slot, to_slot, requested_by, reason, message, started_at, finished_at, duration_ms)
SELECT id, environment_id, kind, status, from_version, to_version,
    from_slot, to_slot, requested_by, reason, message, started_at, finished_at, duration_ms
FROM deployments;

DELETE FROM sqlite_sequence WHERE name IN ('environments_new', 'deployments_new');
INSERT INTO sqlite_sequence (name, seq)
    SELECT name || '_new', seq FROM sqlite_sequence WHERE name IN ('environments', 'deployments');

-- Children first: nothing references them, so dropping them checks nothing;
-- then the old parent has no children left.
DROP TABLE deployments;
DROP TABLE slots;
DROP TABLE environments;

ALTER TABLE environments_new RENAME TO environments;
ALTER TABLE slots_new RENAME TO slots;
ALTER TABLE deployments_new RENAME TO deployments;

-- The environment lock: the database itself refuses a second running deployment.
CREATE UNIQUE INDEX one_running_deployment_per_environment
    ON deployments (environment_id) WHERE status = 'running';
CREATE INDEX deployments_by_environment ON deployments (environment_id, id DESC);
