-- Empty the temporary id table before the next lookup.
DELETE FROM publish_ids
