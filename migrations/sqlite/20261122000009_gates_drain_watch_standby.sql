-- Gates, drain, the watch window and the standby window (issue 3).
--
-- Gates the idle slot must pass before the switch (issue 3): smoke routes
-- that must answer 2xx (one path per line; the first is also the performance
-- sample's route) and a performance sample with p95 / p99 / error-rate
-- thresholds. Defaults are reference/002's: p95 < 200 ms, p99 < 500 ms,
-- errors < 1 %, over 50 requests. A sample of 0 requests turns it off.
--
-- ADD COLUMN (no rebuild): none of these changes an existing constraint.
ALTER TABLE environments ADD COLUMN gate_smoke_paths TEXT NOT NULL DEFAULT '/';
ALTER TABLE environments ADD COLUMN gate_sample_requests INTEGER NOT NULL DEFAULT 50
    CHECK (gate_sample_requests BETWEEN 0 AND 10000);
ALTER TABLE environments ADD COLUMN gate_p95_ms INTEGER NOT NULL DEFAULT 200 CHECK (gate_p95_ms > 0);
ALTER TABLE environments ADD COLUMN gate_p99_ms INTEGER NOT NULL DEFAULT 500 CHECK (gate_p99_ms > 0);
ALTER TABLE environments ADD COLUMN gate_max_error_pct REAL NOT NULL DEFAULT 1.0
    CHECK (gate_max_error_pct BETWEEN 0 AND 100);

-- After the switch the old slot gets no new requests; the deploy waits up to
-- this long for its in-flight requests to finish (reference/001: 30 s).
ALTER TABLE environments ADD COLUMN drain_timeout_ms INTEGER NOT NULL DEFAULT 30000
    CHECK (drain_timeout_ms > 0);

-- After a deploy's switch the new slot is watched this long (reference/002,
-- 003: 5 minutes); a breach rolls back by itself. 0 turns the watch off.
ALTER TABLE environments ADD COLUMN watch_window_ms INTEGER NOT NULL DEFAULT 300000
    CHECK (watch_window_ms >= 0);

-- One row per watched deploy. `generation` is the routing generation the
-- deploy installed: once the router is past it, traffic has moved and the
-- watch ends. `message` holds the latest figures, then the evidence of a
-- breach; `rollback_id` the automatic rollback it started.
CREATE TABLE deployment_watches (
    deployment_id  INTEGER PRIMARY KEY REFERENCES deployments (id),
    environment_id INTEGER NOT NULL REFERENCES environments (id),
    slot           TEXT    NOT NULL CHECK (slot IN ('blue', 'green')),
    generation     INTEGER NOT NULL,
    started_at     TEXT    NOT NULL,
    until          TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('watching', 'passed', 'breached', 'stopped')),
    message        TEXT,
    rollback_id    INTEGER REFERENCES deployments (id),
    finished_at    TEXT
);
CREATE INDEX deployment_watches_open ON deployment_watches (status) WHERE status = 'watching';

-- The slot users left stays warm this long after a switch (reference/001:
-- 15 minutes); then it is stopped, and a rollback starts it again first.
-- 0 keeps it warm until the next deploy.
ALTER TABLE environments ADD COLUMN standby_window_ms INTEGER NOT NULL DEFAULT 900000
    CHECK (standby_window_ms >= 0);
-- Set on the slot users left at each switch; kept (in the past) after the
-- window stopped it: the mark that a rollback may start it again.
ALTER TABLE slots ADD COLUMN standby_until TEXT;
