-- A canary while a deploy is held at preview (issue 15, item 5): a deployer
-- may send a share of new users, and testers chosen by a header or cookie,
-- to the held (preview) slot. The hold row records the setting in force.
--
-- `canary` is the setting as JSON (`{"percent": 20, "header": {"name": …,
-- "value": …}, "cookie": …}`), NULL while never set; `canary_by` and
-- `canary_at` say who set it and when. `canary_writing_since` is set while a
-- console writes it to the router: the held deploy's worker, once decided,
-- waits for that write to land before it reads the router's table, so its
-- switch is fenced above the canary's generation.
ALTER TABLE deployment_holds ADD COLUMN canary TEXT;
ALTER TABLE deployment_holds ADD COLUMN canary_by TEXT;
ALTER TABLE deployment_holds ADD COLUMN canary_at TEXT;
ALTER TABLE deployment_holds ADD COLUMN canary_writing_since TEXT;
