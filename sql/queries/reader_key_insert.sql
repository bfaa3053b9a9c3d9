-- Store a new API key (only its hash and a short prefix); returns its id.
INSERT INTO serving.api_keys (name, key_hash, key_prefix) VALUES (%s, %s, %s) RETURNING key_id
