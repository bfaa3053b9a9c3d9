-- An API key's revocation time, locking its row.
SELECT revoked_at FROM serving.api_keys WHERE key_id = %s FOR UPDATE
