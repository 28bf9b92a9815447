-- PostgreSQL translation of migrations/sqlite/20261204000013_slot_environment.sql.
--
-- What a slot's process environment holds besides PORT and APP_VERSION
-- (issue 14; engine/src/slot_env/): plain variables, and secrets encrypted
-- with the data directory's `secrets.key` (XChaCha20-Poly1305, the
-- environment's and the secret's names as associated data). `updated_by` is
-- the username that set the value, `updated_at` the console's time.
--
-- `updated_at` stays TEXT: the engine writes and reads it as a string
-- (engine::audit::timestamp), not as a DateTime.
CREATE TABLE environment_variables (
    environment_id BIGINT NOT NULL REFERENCES environments (id),
    name           TEXT   NOT NULL,
    value          TEXT   NOT NULL,
    updated_at     TEXT   NOT NULL,
    updated_by     TEXT   NOT NULL,
    PRIMARY KEY (environment_id, name)
);

CREATE TABLE environment_secrets (
    environment_id BIGINT NOT NULL REFERENCES environments (id),
    name           TEXT   NOT NULL,
    -- First 16 hex digits of the encrypting key's SHA-256.
    key_id         TEXT   NOT NULL,
    nonce          BYTEA  NOT NULL,
    ciphertext     BYTEA  NOT NULL,
    updated_at     TEXT   NOT NULL,
    updated_by     TEXT   NOT NULL,
    PRIMARY KEY (environment_id, name)
);
