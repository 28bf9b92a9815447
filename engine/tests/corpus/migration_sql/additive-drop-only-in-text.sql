/* This script says DROP a lot, but only in comments, strings and names.
   DROP TABLE customers; -- not a statement */
CREATE TABLE "DROP TABLE audit" (
    id   BIGSERIAL PRIMARY KEY,
    note TEXT NOT NULL DEFAULT 'DROP TABLE customers; --',
    kind TEXT CHECK (kind <> 'DROP')
);
-- DROP INDEX idx_customers_phone;
INSERT INTO "DROP TABLE audit" (note) VALUES ('ALTER TABLE t DROP COLUMN c; it''s fine');
COMMENT ON TABLE "DROP TABLE audit" IS 'drop me later, in another release';
