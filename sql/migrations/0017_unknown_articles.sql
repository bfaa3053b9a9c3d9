-- Real exports are incomplete: events may name articles their catalogue lacks. Such events
-- are kept, and their article is a row whose metadata is unknown (category 'unknown', the
-- "unknown publication", published_at = the first time it was seen). Those rows are never
-- candidates for recommendation; their events still count in behaviour features.
ALTER TABLE warehouse.articles ADD COLUMN metadata_known boolean NOT NULL DEFAULT true;

-- The source's impression (slate) id: every article shown in one list, and its clicks, share
-- it, so evaluation can group by impression. Text, since sources name slates their own way;
-- NULL where the source has none (the simulator, history reads).
ALTER TABLE warehouse.events ADD COLUMN slate_id text;
