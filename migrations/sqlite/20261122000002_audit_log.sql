-- The audit log: append-only and hash-chained. Each row stores the hash of the
-- row before it and its own hash over a canonical encoding (engine::audit), so
-- an edited, deleted or reordered row breaks the chain where it happened.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL,
    actor_kind  TEXT    NOT NULL CHECK (actor_kind IN ('user', 'token', 'system', 'anonymous')),
    actor_id    INTEGER,
    actor_name  TEXT    NOT NULL,
    source_ip   TEXT,
    action      TEXT    NOT NULL,
    environment TEXT,
    target      TEXT,
    reason      TEXT,
    result      TEXT    NOT NULL CHECK (result IN ('ok', 'denied', 'failed')),
    details     TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE
);

-- The database refuses to change history; there is no update or delete path in the code either.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE INDEX audit_log_by_actor ON audit_log (actor_name, id DESC);
CREATE INDEX audit_log_by_action ON audit_log (action, id DESC);
CREATE INDEX audit_log_by_environment ON audit_log (environment, id DESC);
