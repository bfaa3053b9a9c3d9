-- Serving rows name the model that ranked them. During an experiment one batch holds lists
-- from several models (the champion, challengers, the popularity control); the batch's own
-- model_version stays the champion's. NULL on rows written before this migration: the
-- batch's model ranked them.
ALTER TABLE serving.recommendations ADD COLUMN model_version text;
