-- The share of drifted features in a day's latest feature-drift result.
SELECT drift_share FROM ops.drift_latest WHERE logical_date = %s AND kind = 'features'
