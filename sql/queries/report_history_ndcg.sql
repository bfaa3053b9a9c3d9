-- The nightly report's charts: NDCG@10 per night of the window: the model the night trained
-- (its latest successful train run), logged and unbiased (IPS, where positions are known: NULL
-- otherwise, which draws no point), and the champion (logged) as the retrain checker measured it.
(SELECT t.logical_date, v.label, v.value
 FROM (SELECT DISTINCT ON (logical_date) logical_date, details
       FROM ops.runs
       WHERE stage = 'train' AND status = 'success' AND details ? 'ndcg'
         AND logical_date BETWEEN %(start)s AND %(day)s
       ORDER BY logical_date, run_id DESC) t
 CROSS JOIN LATERAL (VALUES ('trained model', (t.details->>'ndcg')::float8),
                            ('trained model, unbiased (IPS)', (t.details->>'ips_ndcg')::float8)) v (label, value))
UNION ALL
(SELECT DISTINCT ON (logical_date) logical_date, 'champion', (evidence->>'champion_ndcg_today')::float8
 FROM ops.retrain_decisions
 WHERE evidence ? 'champion_ndcg_today' AND logical_date BETWEEN %(start)s AND %(day)s
 ORDER BY logical_date, decision_id DESC)
