-- The live version inserts without naming `tier`, relying on its default:
-- with the default gone its inserts fail (the column is NOT NULL).
ALTER TABLE customers ALTER COLUMN tier DROP DEFAULT;
