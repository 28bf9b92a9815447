ALTER TABLE orders ADD COLUMN region TEXT;
UPDATE orders SET region = 'eu' WHERE region IS NULL;
CREATE TYPE shipping AS ENUM ('standard', 'express');
ALTER TABLE orders ADD COLUMN shipping shipping DEFAULT 'standard';
