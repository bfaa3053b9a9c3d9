-- A new batch row, 'writing' until its rows are in; parameters: data date, model version, the
-- model's serving folder (its artifact key).
INSERT INTO serving.batches (data_date, model_version, model_key, status)
VALUES (%s, %s, %s, 'writing')
RETURNING batch_id
