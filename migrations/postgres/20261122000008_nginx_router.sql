-- PostgreSQL translation of migrations/sqlite/20261122000008_nginx_router.sql.
--
-- Environments may route traffic through a local nginx (router 'nginx'):
-- Switchyard rewrites an upstream include, runs `nginx -t` and reloads nginx.
--
-- SQLite rebuilds `environments` under its own name to widen the router
-- CHECK and add the nginx columns and the table CHECK; PostgreSQL alters it
-- in place. The columns come after those of 20261122000006, as in SQLite.
ALTER TABLE environments
    DROP CONSTRAINT environments_router_check,
    ADD CONSTRAINT environments_router_check CHECK (router IN ('builtin', 'nginx'));

-- Nginx router (all NULL for 'builtin'): the nginx executable (NULL:
-- /usr/sbin/nginx), its main configuration (-c), its prefix (-p, NULL:
-- compiled-in), the upstream include Switchyard owns, the master's pid
-- file, the upstream's name (NULL: switchyard_<name>) and how long
-- `nginx -t` / the reload may take (NULL: 10 s). The builtin router's
-- proxy_admin_url is unused by the nginx router.
ALTER TABLE environments ADD COLUMN nginx_binary TEXT;
ALTER TABLE environments ADD COLUMN nginx_conf TEXT;
ALTER TABLE environments ADD COLUMN nginx_prefix TEXT;
ALTER TABLE environments ADD COLUMN nginx_include TEXT;
ALTER TABLE environments ADD COLUMN nginx_pid_file TEXT;
ALTER TABLE environments ADD COLUMN nginx_upstream TEXT;
ALTER TABLE environments ADD COLUMN nginx_reload_timeout_ms BIGINT
    CHECK (nginx_reload_timeout_ms IS NULL OR nginx_reload_timeout_ms > 0);
ALTER TABLE environments ADD CONSTRAINT environments_nginx_check CHECK (router <> 'nginx'
    OR (nginx_conf IS NOT NULL AND nginx_include IS NOT NULL AND nginx_pid_file IS NOT NULL));
