-- The secrets an environment's configuration declares (a file's
-- `secrets`, the Environments page's registry login), whether or not a
-- value is set (issue 14). Values live in environment_secrets; a name
-- declared before its value is set was forgotten at once without this, so
-- an exported file applied to another console did not export the same.
-- An environment's secrets, as written down, are the names here and in
-- environment_secrets (engine/src/slot_env/).
CREATE TABLE environment_declared_secrets (
    environment_id INTEGER NOT NULL REFERENCES environments (id),
    name           TEXT    NOT NULL,
    PRIMARY KEY (environment_id, name)
);
