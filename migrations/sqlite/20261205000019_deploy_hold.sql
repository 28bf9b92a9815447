-- Hold at preview (issue 17): an environment may pause each deploy after its
-- gates, the preview live, until a deployer promotes or aborts it or the
-- hold's timeout aborts it.
ALTER TABLE environments ADD COLUMN hold_at_preview INTEGER NOT NULL DEFAULT 0;
ALTER TABLE environments ADD COLUMN hold_timeout_ms INTEGER NOT NULL DEFAULT 1800000;

-- One row per held deploy. The decision is written once (`decision IS NULL`
-- until then): by a deployer ('promote'/'abort', from any console: the
-- worker polls this row) or by the worker itself ('timeout'). `reason` is
-- the aborting deployer's text.
CREATE TABLE deployment_holds (
    deployment_id INTEGER PRIMARY KEY REFERENCES deployments(id),
    preview_url   TEXT    NOT NULL,
    held_at       TEXT    NOT NULL,
    until         TEXT    NOT NULL,
    decision      TEXT    CHECK (decision IS NULL OR decision IN ('promote', 'abort', 'timeout')),
    decided_by    TEXT,
    reason        TEXT,
    decided_at    TEXT
);
