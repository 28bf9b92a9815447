-- Users of the console. password_hash is an argon2id PHC string; it never leaves the engine.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'deployer', 'approver', 'admin')),
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT    NOT NULL
);

-- One application with two slots, one runtime driver and one traffic router.
CREATE TABLE environments (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL UNIQUE,
    app_url            TEXT    NOT NULL,
    runtime            TEXT    NOT NULL DEFAULT 'process' CHECK (runtime IN ('process')),
    -- Command for the process runtime; {version} is replaced by the release's version.
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

CREATE TABLE slots (
    environment_id      INTEGER NOT NULL REFERENCES environments (id),
    color               TEXT    NOT NULL CHECK (color IN ('blue', 'green')),
    version             TEXT,
    state               TEXT    NOT NULL DEFAULT 'stopped'
                        CHECK (state IN ('stopped', 'starting', 'healthy', 'unhealthy', 'draining')),
    -- Runtime handle: a pid for the process runtime.
    handle              TEXT,
    address             TEXT,
    last_health_ok      INTEGER,
    last_health_message TEXT,
    last_health_at      TEXT,
    updated_at          TEXT    NOT NULL,
    PRIMARY KEY (environment_id, color)
);

CREATE TABLE deployments (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id INTEGER NOT NULL REFERENCES environments (id),
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

-- The environment lock: the database itself refuses a second running deployment.
CREATE UNIQUE INDEX one_running_deployment_per_environment
    ON deployments (environment_id) WHERE status = 'running';
CREATE INDEX deployments_by_environment ON deployments (environment_id, id DESC);
