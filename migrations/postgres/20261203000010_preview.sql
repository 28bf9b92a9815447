-- PostgreSQL translation of migrations/sqlite/20261203000010_preview.sql
-- (the same statement).
--
-- The preview address (DESIGN.md, deploy step 5: "gates on the idle slot
-- through a preview address"). `preview_listen` is host:port of the router's
-- preview listener; NULL: no preview listener, the gates call the idle
-- slot's own address. The engine validates the value
-- (`environments::validate_preview_listen`).
ALTER TABLE environments ADD COLUMN preview_listen TEXT;
