-- PostgreSQL translation of migrations/sqlite/20261205000022_environment_routes.sql.
--
-- The host names an environment is served under on a shared
-- switchyard-proxy (one named route per environment): exact names or `*.`
-- wildcards, one per line ('' : no route), an optional path prefix, and
-- whether plain-HTTP requests of the route are redirected to HTTPS.
-- `redirect_https` is BOOLEAN: the type holds SQLite's CHECK (... IN (0, 1)).
ALTER TABLE environments ADD COLUMN route_hosts TEXT NOT NULL DEFAULT '';
ALTER TABLE environments ADD COLUMN route_path_prefix TEXT;
ALTER TABLE environments ADD COLUMN redirect_https BOOLEAN NOT NULL DEFAULT FALSE;
