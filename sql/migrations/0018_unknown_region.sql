-- A source without regions (MIND) leaves users' regions unknown instead of inventing them:
-- region 'unknown' (a value rather than NULL, because readers of the warehouse parse the text
-- 'NA', North America, as a missing value and read a NULL region back as 'NA'). Under a
-- profile without regions the model has no region feature; candidates' "trending in your
-- region" and the fallback lists treat 'unknown' as one more group of users (everyone, on
-- such a source), and the fallback lists publish no 'unknown' list (GLOBAL serves them).
ALTER TABLE warehouse.users DROP CONSTRAINT users_region_check;
ALTER TABLE warehouse.users
    ADD CONSTRAINT users_region_check CHECK (region IN ('LATAM', 'AFRICA', 'NA', 'unknown'));
