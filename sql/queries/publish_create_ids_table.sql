-- A session-temporary table of ids (emptied at commit) that publish joins its lookups to.
CREATE TEMP TABLE IF NOT EXISTS publish_ids (id bigint PRIMARY KEY) ON COMMIT DELETE ROWS
