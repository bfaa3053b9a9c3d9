-- The region of each user id in publish_ids.
SELECT u.user_id, u.region FROM publish_ids i JOIN warehouse.users u ON u.user_id = i.id
