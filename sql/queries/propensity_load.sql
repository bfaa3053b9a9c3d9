-- The stored propensity estimate of one day, by position.
SELECT position, propensity, impressions, clicks, method, first_day, last_day, details, estimated_at
FROM ops.position_propensity
WHERE logical_date = %(day)s
ORDER BY position
