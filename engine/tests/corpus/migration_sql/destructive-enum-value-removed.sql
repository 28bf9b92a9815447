-- PostgreSQL has no DROP VALUE; removing one means deleting from the catalog.
DELETE FROM pg_catalog.pg_enum WHERE enumlabel = 'serving';
