-- The details of a stage's newest successful run for a logical date (e.g. the version a training run registered).
SELECT details FROM ops.runs
WHERE stage = %(stage)s AND logical_date = %(day)s AND status = 'success'
ORDER BY run_id DESC LIMIT 1
