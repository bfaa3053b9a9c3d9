-- A batch's model version, status and row count.
SELECT model_version, status, n_rows FROM serving.batches WHERE batch_id = %s
