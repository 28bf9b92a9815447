-- Gates and drain (issue 3).
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
