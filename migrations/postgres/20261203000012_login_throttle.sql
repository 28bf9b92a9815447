-- PostgreSQL translation of migrations/sqlite/20261203000012_login_throttle.sql.
--
-- Sign-in throttling (issue 12; engine/src/throttle.rs). One row per
-- throttled key: an attempted username (trimmed, lowercased) or a source
-- address (an IPv4 address, or an IPv6 /64). `failures` counts consecutive
-- failed attempts; past the policy's free allowance each further failure
-- locks the key until `locked_until`.
--
-- Times are Unix milliseconds (UTC), BIGINT: the charge is a compare-and-set
-- on the exact values read. `refusal_audited_until` is the `locked_until`
-- whose first refusal went to the audit log. (SQLite's WITHOUT ROWID only
-- changes its storage: the primary key is the same.)
CREATE TABLE login_throttle (
    kind                  TEXT   NOT NULL CHECK (kind IN ('account', 'address')),
    key                   TEXT   NOT NULL,
    failures              BIGINT NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_until          BIGINT,
    last_failure_at       BIGINT,
    refusal_audited_until BIGINT,
    PRIMARY KEY (kind, key)
);

CREATE INDEX login_throttle_by_last_failure ON login_throttle (last_failure_at);
