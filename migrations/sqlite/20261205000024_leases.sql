-- The time is chrono's text form, compared in Rust (engine/src/leases.rs).
--
-- Leases (issue 18): consoles that share one database each run the same
-- background rounds (lock recovery and standby expiry, the webhook outbox,
-- audit checkpoints), but each round must run once for all of them: two
-- webhook rounds would send one delivery twice. A lease names the console
-- that runs a round until `expires_at`; it renews the lease every round,
-- and when it dies the lease runs out and another console takes it.
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
