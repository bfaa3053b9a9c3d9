-- Fresh statistics of the ids just copied in, so the lookup join plans well.
ANALYZE publish_ids
