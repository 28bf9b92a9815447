-- Sign-in throttling (issue 12; engine/src/throttle.rs).
--
-- One row per throttled key: an attempted username (trimmed, lowercased —
-- the same whether or not such an account exists) or a source address (an
-- IPv4 address, or an IPv6 /64). `failures` counts consecutive failed
-- attempts; once it passes the policy's free allowance, each further failure
-- locks the key until `locked_until`, for a time that doubles per failure up
-- to a cap. Every attempt is charged here *before* its password is checked,
-- in one conditional write, so parallel attempts (or a second console on the
-- same database) cannot slip extra guesses past a lock.
--
-- Times are Unix milliseconds (UTC): the charge is a compare-and-set on the
-- exact values read, which integers round-trip without any doubt.
-- `refusal_audited_until` is the `locked_until` whose first refusal went to
-- the audit log: one `auth.throttled` entry per key per lock, however many
-- attempts the lock refuses.
--
-- Rows whose lock has passed and whose last failure is older than the
-- policy's forget window mean nothing any more and are pruned.
CREATE TABLE login_throttle (
    kind                  TEXT    NOT NULL CHECK (kind IN ('account', 'address')),
    key                   TEXT    NOT NULL,
    failures              INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_until          INTEGER,
    last_failure_at       INTEGER,
    refusal_audited_until INTEGER,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;

CREATE INDEX login_throttle_by_last_failure ON login_throttle (last_failure_at);
