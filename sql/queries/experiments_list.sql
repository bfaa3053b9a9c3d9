-- Every experiment, newest first, with its arms as name:share:status.
SELECT e.experiment_id, e.name, e.status, e.started_on, e.stopped_on,
       string_agg(a.arm || ':' || round(a.share::numeric, 2) || ':' || a.status, ' ' ORDER BY a.position)
FROM ops.experiments e LEFT JOIN ops.experiment_arms a USING (experiment_id)
GROUP BY e.experiment_id
ORDER BY e.experiment_id DESC
