-- The ops exporter: per drift kind, the newest verdict (newest logical date, then newest
-- result of that date, as ops.drift_latest keeps it): share, threshold, whether it drifted
-- and its logical date (epoch seconds).
SELECT DISTINCT ON (kind) kind, drift_share, share_threshold, drifted,
       extract(epoch FROM logical_date::timestamp AT TIME ZONE 'UTC')::double precision
FROM ops.drift_latest
ORDER BY kind, logical_date DESC
