-- The REST reader: is this key hash a current (not revoked) key? asyncpg placeholder $1.
SELECT key_id FROM serving.api_keys WHERE key_hash = $1 AND revoked_at IS NULL
