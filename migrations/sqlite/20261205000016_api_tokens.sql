-- API tokens (issue 17): how pipelines and the remote CLI act without a
-- browser session.
--
-- A token is `sy_<prefix>_<secret>`: `prefix` (8 characters, shown in lists
-- and the audit log so a person can tell tokens apart) finds the row, and
-- `secret_sha256` checks the rest. The secret carries 256 random bits, so a
-- plain SHA-256 is enough (nothing to brute-force); the token itself is shown
-- once and never stored.
--
-- Every token acts for its owner (four-eyes compares the owner), never above
-- the owner's role, and dies when the owner is disabled. `kind` tells a
-- personal token (made by its owner for themself) from a service token (made
-- by an admin, for a pipeline). `environments` is a JSON array of the
-- environment names the token may act on, NULL for all. Revoked tokens stay
-- for the audit trail.
CREATE TABLE api_tokens (
    id             INTEGER PRIMARY KEY,
    prefix         TEXT    NOT NULL UNIQUE,
    secret_sha256  TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('personal', 'service')),
    owner_id       INTEGER NOT NULL REFERENCES users(id),
    role           TEXT    NOT NULL CHECK (role IN ('viewer', 'deployer', 'approver', 'admin')),
    environments   TEXT,
    created_at     TEXT    NOT NULL,
    created_by     INTEGER NOT NULL REFERENCES users(id),
    expires_at     TEXT,
    last_used_at   TEXT,
    last_used_ip   TEXT,
    revoked_at     TEXT,
    revoked_by     INTEGER REFERENCES users(id)
);

-- A name is how its owner refers to a live token (`token revoke NAME`).
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (owner_id, name)
    WHERE revoked_at IS NULL;
