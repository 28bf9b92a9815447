-- The host names an environment is served under on a shared
-- switchyard-proxy (one named route per environment, the route named after
-- it): exact names or `*.` wildcards, one per line ('' : no route, the
-- proxy's default table as before), an optional path prefix, and whether
-- plain-HTTP requests of the route are redirected to HTTPS. Shapes are
-- checked by the engine (mirroring the proxy's rules), like every setting.
ALTER TABLE environments ADD COLUMN route_hosts TEXT NOT NULL DEFAULT '';
ALTER TABLE environments ADD COLUMN route_path_prefix TEXT;
ALTER TABLE environments ADD COLUMN redirect_https INTEGER NOT NULL DEFAULT 0
    CHECK (redirect_https IN (0, 1));
