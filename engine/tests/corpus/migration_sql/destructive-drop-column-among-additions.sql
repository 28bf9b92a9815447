CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT);
ALTER TABLE customers ADD COLUMN email_verified BOOLEAN DEFAULT false, DROP COLUMN phone;
CREATE INDEX idx_notes_body ON notes (body);
