-- Freeze windows (issue 17): times when an environment takes no deploys
-- (rollbacks always go through; an admin may override with a reason).
--
-- `kind` 'once': from `starts_local` to `ends_local`; 'weekly': on each of
-- `days` (comma-separated mon..sun) from `start_time` for `duration_minutes`.
-- Local times ('YYYY-MM-DD HH:MM', 'HH:MM') are read in `time_zone` (an IANA
-- name), so "Friday 18:00 in Berlin" stays 18:00 across daylight saving.
CREATE TABLE freeze_windows (
    id               INTEGER PRIMARY KEY,
    environment_id   INTEGER NOT NULL REFERENCES environments(id),
    reason           TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('once', 'weekly')),
    starts_local     TEXT,
    ends_local       TEXT,
    days             TEXT,
    start_time       TEXT,
    duration_minutes INTEGER CHECK (duration_minutes IS NULL OR duration_minutes BETWEEN 1 AND 10080),
    time_zone        TEXT    NOT NULL,
    created_by       TEXT    NOT NULL,
    created_at       TEXT    NOT NULL
);

CREATE INDEX freeze_windows_by_environment ON freeze_windows (environment_id);
