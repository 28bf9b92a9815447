-- The steps of each deployment (issue 3): what the pipeline did, in order,
-- with when each step ran and, for a failed one, why. The worker writes them
-- as it goes, so a page can show a deploy's progress while it runs.
--
-- All of a deployment's steps are written `pending` when it starts; steps the
-- run never reached end `skipped`. A step left `running` by a console that
-- died is closed as `failed` when the next console reconciles.
CREATE TABLE deployment_steps (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    seq           INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    started_at    TEXT,
    finished_at   TEXT,
    -- What happened, for people: never a secret (no tokens, no passwords).
    message       TEXT,
    PRIMARY KEY (deployment_id, seq),
    UNIQUE (deployment_id, name)
);
