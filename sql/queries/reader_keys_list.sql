-- Every API key, without its hash.
SELECT key_id, name, key_prefix, created_at, revoked_at FROM serving.api_keys ORDER BY key_id
