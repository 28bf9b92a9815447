-- Releases and their pre-deployment checklists (issue 5).
--
-- A checklist template belongs to an environment; when a release is requested
-- the template is copied into `release_items`, so later template edits never
-- change what an existing release was asked to satisfy. Sign-offs name the
-- release revision they were given for: editing a release bumps its revision
-- and voids them (OWASP transaction authorization: a signature covers exactly
-- what was shown to the signer).

-- The environment a release must have succeeded in first (promotion), by name.
ALTER TABLE environments ADD COLUMN upstream_environment TEXT;
-- Command line whose exit status says whether a recent enough backup exists
-- (0 = yes). Configured by an operator on the server, never from the browser.
ALTER TABLE environments ADD COLUMN backup_command TEXT;
-- How long a sign-off stays valid (default 24 h, as GitHub environments' wait timer).
ALTER TABLE environments ADD COLUMN signoff_ttl_secs INTEGER NOT NULL DEFAULT 86400
    CHECK (signoff_ttl_secs > 0);

CREATE TABLE checklist_items (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id INTEGER NOT NULL REFERENCES environments (id),
    position       INTEGER NOT NULL,
    title          TEXT    NOT NULL,
    description    TEXT    NOT NULL DEFAULT '',
    required_role  TEXT    NOT NULL CHECK (required_role IN ('deployer', 'approver', 'admin')),
    -- NULL: a person signs it. Otherwise the engine verifies it.
    auto_check     TEXT    CHECK (auto_check IN
                       ('upstream_succeeded', 'migrations_additive', 'idle_slot_healthy', 'backup_recent')),
    -- backup_recent: how old the newest backup may be.
    max_age_hours  INTEGER CHECK (max_age_hours IS NULL OR max_age_hours > 0),
    required       INTEGER NOT NULL DEFAULT 1 CHECK (required IN (0, 1)),
    created_at     TEXT    NOT NULL
);
CREATE INDEX checklist_items_env ON checklist_items (environment_id, position);

CREATE TABLE releases (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id INTEGER NOT NULL REFERENCES environments (id),
    version        TEXT    NOT NULL,
    -- What the runtime starts, resolved from the environment's artifact
    -- template when the release was requested (shown to signers).
    artifact       TEXT    NOT NULL,
    notes          TEXT    NOT NULL DEFAULT '',
    migration_sql  TEXT    NOT NULL DEFAULT '',
    requested_by   INTEGER NOT NULL REFERENCES users (id),
    revision       INTEGER NOT NULL DEFAULT 1 CHECK (revision > 0),
    status         TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'cancelled')),
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
);
CREATE INDEX releases_env ON releases (environment_id, id);

CREATE TABLE release_items (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id    INTEGER NOT NULL REFERENCES releases (id),
    position      INTEGER NOT NULL,
    title         TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    required_role TEXT    NOT NULL CHECK (required_role IN ('deployer', 'approver', 'admin')),
    auto_check    TEXT    CHECK (auto_check IN
                      ('upstream_succeeded', 'migrations_additive', 'idle_slot_healthy', 'backup_recent')),
    max_age_hours INTEGER,
    required      INTEGER NOT NULL CHECK (required IN (0, 1))
);
CREATE INDEX release_items_release ON release_items (release_id, position);

CREATE TABLE signoffs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    release_item_id INTEGER NOT NULL REFERENCES release_items (id),
    release_id      INTEGER NOT NULL REFERENCES releases (id),
    revision        INTEGER NOT NULL,
    signed_by       INTEGER NOT NULL REFERENCES users (id),
    note            TEXT    NOT NULL DEFAULT '',
    signed_at       TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    -- Set when the signature stops counting: revoked, release edited, expired.
    voided_at       TEXT,
    voided_by       INTEGER REFERENCES users (id),
    void_reason     TEXT
);
-- At most one live signature per item: a second signer is told who signed.
CREATE UNIQUE INDEX signoffs_one_live ON signoffs (release_item_id) WHERE voided_at IS NULL;
CREATE INDEX signoffs_release ON signoffs (release_id);

-- Which release a deployment deployed (NULL for unprotected environments and rollbacks).
ALTER TABLE deployments ADD COLUMN release_id INTEGER REFERENCES releases (id);
