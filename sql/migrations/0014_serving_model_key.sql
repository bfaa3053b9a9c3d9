-- The serving folder of the model that ranked a batch, keyed by the registry's identity of the
-- version (its MLflow run id), not by the version number alone: version numbers repeat across
-- registries, so two databases sharing one NEWSREC_HOME would otherwise share model files.
ALTER TABLE serving.batches ADD COLUMN model_key text;
