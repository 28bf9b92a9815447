-- Snowflake syntax the parser accepts; drops the table's clustering key.
ALTER TABLE events DROP CLUSTERING KEY;
