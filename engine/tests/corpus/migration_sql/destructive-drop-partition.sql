-- Deletes a partition's rows (Hive/ClickHouse syntax the parser accepts).
ALTER TABLE events DROP IF EXISTS PARTITION (day = '2026-11-01');
