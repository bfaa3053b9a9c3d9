-- A new batch row, 'writing' until its rows are in; parameters: data date, model version.
INSERT INTO serving.batches (data_date, model_version, status)
VALUES (%s, %s, 'writing')
RETURNING batch_id
