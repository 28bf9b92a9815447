-- The live version's inserts do not name this column: they would fail.
ALTER TABLE customers ADD COLUMN region TEXT NOT NULL;
