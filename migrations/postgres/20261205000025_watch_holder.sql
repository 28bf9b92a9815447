-- PostgreSQL translation of migrations/sqlite/20261205000025_watch_holder.sql.
--
-- A watch window has a holder (issue 18): consoles that share one database
-- each resumed every open window at start, so two could watch the same
-- deploy and each roll it back. The console that runs a window names itself
-- here and beats every round; another console takes the window over only
-- when that console stopped (a process of this host that is gone) or has not
-- beaten for the deployment lock's time to live, as with a deploy's lock.
-- Windows opened before this migration have no holder: any console may
-- take them.
ALTER TABLE deployment_watches ADD COLUMN holder TEXT;
ALTER TABLE deployment_watches ADD COLUMN heartbeat_at TIMESTAMPTZ;
