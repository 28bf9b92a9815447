-- PostgreSQL translation of migrations/sqlite/20261122000004_user_epochs.sql.
--
-- Sessions remember these at sign-in. Bumping auth_epoch (disable, password
-- reset) ends every session of the user; bumping role_epoch (role change)
-- makes the next request cycle the session id under the new role.
ALTER TABLE users ADD COLUMN auth_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN role_epoch BIGINT NOT NULL DEFAULT 0;
