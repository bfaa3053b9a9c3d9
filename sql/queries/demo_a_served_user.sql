-- Some user with a list in the live batch (the demo asks the reader for it).
SELECT user_id FROM serving.recommendations r JOIN serving.live l USING (batch_id) LIMIT 1
