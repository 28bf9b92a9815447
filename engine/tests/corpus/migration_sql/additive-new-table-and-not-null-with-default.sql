CREATE TABLE IF NOT EXISTS audit_trail (
    id         BIGSERIAL PRIMARY KEY,
    note       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT now()
);
ALTER TABLE customers ADD COLUMN tier TEXT NOT NULL DEFAULT 'basic';
ALTER TABLE customers ADD COLUMN score INT;
ALTER TABLE customers ALTER COLUMN tier SET DEFAULT 'standard';
CREATE UNIQUE INDEX IF NOT EXISTS idx_audit_trail_note ON audit_trail (note);
