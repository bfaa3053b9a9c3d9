-- Revoke an API key now.
UPDATE serving.api_keys SET revoked_at = now() WHERE key_id = %s
