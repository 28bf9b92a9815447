-- Free-text search over the audit log (FTS5, external content: the text lives
-- only in audit_log). Filled by a trigger so no code path can forget it; the
-- log itself stays append-only, so the index never needs updates or deletes.
CREATE VIRTUAL TABLE audit_fts USING fts5 (
    actor_name, action, environment, target, reason, details,
    content = 'audit_log', content_rowid = 'id'
);

CREATE TRIGGER audit_log_index AFTER INSERT ON audit_log
BEGIN
    INSERT INTO audit_fts (rowid, actor_name, action, environment, target, reason, details)
    VALUES (new.id, new.actor_name, new.action, new.environment, new.target, new.reason, new.details);
END;

CREATE INDEX audit_log_by_time ON audit_log (at);
