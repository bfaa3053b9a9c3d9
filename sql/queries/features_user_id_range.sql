-- The range of user ids (the ETL splits it into shards).
SELECT min(user_id), max(user_id) FROM warehouse.users
