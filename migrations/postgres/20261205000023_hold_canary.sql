-- PostgreSQL translation of migrations/sqlite/20261205000023_hold_canary.sql.
--
-- A canary while a deploy is held at preview (issue 15, item 5). `canary` is
-- the setting as JSON (TEXT, read as a string), NULL while never set;
-- `canary_by` and `canary_at` say who set it and when.
-- `canary_writing_since` is set while a console writes it to the router.
ALTER TABLE deployment_holds ADD COLUMN canary TEXT;
ALTER TABLE deployment_holds ADD COLUMN canary_by TEXT;
ALTER TABLE deployment_holds ADD COLUMN canary_at TIMESTAMPTZ;
ALTER TABLE deployment_holds ADD COLUMN canary_writing_since TIMESTAMPTZ;
