-- Publish times are present unless every article shares one, or nearly every article seen in
-- events was "published" exactly at its first event (an importer that had none used first-seen).
WITH first_seen AS (
    SELECT article_id, min(event_ts) AS ts FROM warehouse.events GROUP BY article_id
)
SELECT (SELECT count(DISTINCT published_at) FROM warehouse.articles) > 1
   AND coalesce((SELECT avg((a.published_at = f.ts)::int)
                 FROM first_seen f JOIN warehouse.articles a USING (article_id)), 0) < %(first_seen_share)s
