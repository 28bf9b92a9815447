-- The environment lock gets a holder and a heartbeat (issue 3, DESIGN "Lock").
--
-- The lock itself stays what it was: the running deployment row, unique per
-- environment (index one_running_deployment_per_environment). `holder` names
-- the console process whose worker runs it ("host/pid/start-time/engine");
-- the worker refreshes `heartbeat_at` every few seconds. A lock whose holder
-- is gone (same host, process not running) or whose heartbeat is older than
-- the lock's time to live is recovered by any console; an admin can break it.
-- Every write a worker makes to close its row names its holder, so a worker
-- whose lock was taken over cannot close (or switch) as if it still held it.
--
-- Rows written before this migration have no holder: they are treated as a
-- dead console's, exactly as they were before.
ALTER TABLE deployments ADD COLUMN holder TEXT;
ALTER TABLE deployments ADD COLUMN heartbeat_at TEXT;
