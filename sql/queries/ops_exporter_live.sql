-- The ops exporter: the live batch (no row before the first publish), when it was written,
-- the day its lists are for and when the live pointer last switched (epoch seconds).
SELECT b.batch_id,
       extract(epoch FROM b.created_at)::double precision,
       extract(epoch FROM b.data_date::timestamp AT TIME ZONE 'UTC')::double precision,
       extract(epoch FROM l.switched_at)::double precision
FROM serving.live l
JOIN serving.batches b ON b.batch_id = l.batch_id
