-- An old table, no longer used by the new release... but the live one uses it.
drop table if exists legacy_sessions cascade;
