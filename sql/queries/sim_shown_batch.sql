-- The batch whose lists readers see on day D: the live one when it was published for an earlier
-- date, else the newest complete batch of an earlier date; NULL when there is none.
-- (serving.live holds exactly one row, so the first subquery yields at most one.)
SELECT coalesce(
    (SELECT b.batch_id
     FROM serving.live l
     JOIN serving.batches b USING (batch_id)
     WHERE b.status = 'complete' AND b.data_date < %(day)s),
    (SELECT batch_id
     FROM serving.batches
     WHERE status = 'complete' AND data_date < %(day)s
     ORDER BY data_date DESC, batch_id DESC
     LIMIT 1)
)
