-- PostgreSQL translation of migrations/sqlite/20261122000003_audit_search.sql.
--
-- Free-text search over the audit log. SQLite keeps an FTS5 index (audit_fts,
-- filled by an AFTER INSERT trigger) over actor_name, action, environment,
-- target, reason and details; here the same six columns make a generated
-- tsvector column with a GIN index, so no code path can forget it either.
--
-- FTS5's default tokenizer (unicode61) makes tokens of runs of letters and
-- digits and folds case; audit_search_words() turns every other character
-- into a space, so the 'simple' configuration (no stemming, no stop words,
-- lower case) sees the same tokens: "deploy.start" is "deploy" then "start",
-- and a search for "deploy" finds it, as FTS5 does. A query uses the same
-- function:
--
--   ... WHERE search @@ phraseto_tsquery('simple', audit_search_words($1))
--
-- once per word of the search text (each word a phrase, all of them
-- required: engine::audit's FTS5 query `"w1" "w2"`).
CREATE FUNCTION audit_search_words(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT regexp_replace(coalesce($1, ''), '[^[:alnum:]]+', ' ', 'g') $$;

ALTER TABLE audit_log ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', audit_search_words(actor_name))
    || to_tsvector('simple', audit_search_words(action))
    || to_tsvector('simple', audit_search_words(environment))
    || to_tsvector('simple', audit_search_words(target))
    || to_tsvector('simple', audit_search_words(reason))
    || to_tsvector('simple', audit_search_words(details))
) STORED;

CREATE INDEX audit_log_search ON audit_log USING GIN (search);

CREATE INDEX audit_log_by_time ON audit_log (at);
