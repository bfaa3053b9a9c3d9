-- Slate positions are known when any impression has one (whether they are the display order the
-- data cannot say: an importer whose source does not document it sets positions unknown).
SELECT EXISTS (SELECT 1 FROM warehouse.events WHERE event_type = 'impression' AND position IS NOT NULL)
