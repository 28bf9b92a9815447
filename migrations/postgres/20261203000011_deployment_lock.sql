-- PostgreSQL translation of migrations/sqlite/20261203000011_deployment_lock.sql.
--
-- The environment lock gets a holder and a heartbeat (issue 3, DESIGN "Lock").
-- The lock itself stays the running deployment row, unique per environment
-- (index one_running_deployment_per_environment). `holder` names the console
-- process whose worker runs it ("host/pid/start-time/engine"); the worker
-- refreshes `heartbeat_at` every few seconds. Rows written before this
-- migration have no holder: they are treated as a dead console's.
ALTER TABLE deployments ADD COLUMN holder TEXT;
ALTER TABLE deployments ADD COLUMN heartbeat_at TIMESTAMPTZ;
