-- Webhooks (issue 17): per-environment subscriptions, and a persisted outbox
-- of deliveries so a message survives a console crash.
--
-- The signing secret is sealed with the data directory's secrets key
-- (engine::slot_env::cipher), like environments' secrets: the database alone
-- never reveals it. A removed subscription keeps its row (its delivery log
-- still names it) and gets no new deliveries.
CREATE TABLE webhooks (
    id               INTEGER PRIMARY KEY,
    environment_id   INTEGER NOT NULL REFERENCES environments(id),
    url              TEXT    NOT NULL,
    -- Comma-separated event types; '' for every event.
    events           TEXT    NOT NULL,
    format           TEXT    NOT NULL CHECK (format IN ('standard', 'slack')),
    allow_private    INTEGER NOT NULL CHECK (allow_private IN (0, 1)),
    secret_key_id    TEXT    NOT NULL,
    secret_nonce     BLOB    NOT NULL,
    secret_sealed    BLOB    NOT NULL,
    created_by       TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    removed_at       TEXT
);
CREATE INDEX webhooks_by_environment ON webhooks (environment_id);

-- The last audit entry turned into deliveries. It moves in the same
-- transaction as the deliveries it produced: a crash neither loses nor
-- repeats an event.
CREATE TABLE webhook_cursor (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_audit_id INTEGER NOT NULL
);
-- Start after what is already logged: a new console does not replay history.
INSERT INTO webhook_cursor (id, last_audit_id)
    SELECT 1, COALESCE(MAX(id), 0) FROM audit_log;

-- The outbox and the delivery log in one: a row is pending until a 2xx
-- answer (delivered) or 24 h after its first attempt (gave_up). Times that
-- schedule are unix milliseconds, compared as numbers.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id),
    message_id       TEXT    NOT NULL,
    audit_id         INTEGER,
    event            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'gave_up')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    first_attempt_ms INTEGER,
    last_attempt_ms  INTEGER,
    next_attempt_ms  INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    redelivery_of    INTEGER REFERENCES webhook_deliveries(id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id DESC);
