-- The migration of reference/003, which runs before its blue-green deploys:
-- a new enum value, a nullable column, a partial index.
BEGIN;

ALTER TYPE queue_status_enum ADD VALUE IF NOT EXISTS 'processing';

ALTER TABLE customers
    ADD COLUMN IF NOT EXISTS processing_started_at TIMESTAMP DEFAULT NULL;

CREATE INDEX IF NOT EXISTS idx_customers_processing_status
    ON customers (queue_status)
    WHERE queue_status = 'processing';

COMMIT;
