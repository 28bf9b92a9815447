-- PostgreSQL translation of migrations/sqlite/20261205000020_env_gaps.sql.
--
-- The secrets an environment's configuration declares (a file's `secrets`,
-- the Environments page's registry login), whether or not a value is set
-- (issue 14). Values live in environment_secrets; an environment's secrets,
-- as written down, are the names here and in environment_secrets.
CREATE TABLE environment_declared_secrets (
    environment_id BIGINT NOT NULL REFERENCES environments (id),
    name           TEXT   NOT NULL,
    PRIMARY KEY (environment_id, name)
);
