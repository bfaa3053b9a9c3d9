-- Users signed up by the end of D with what candidate generation needs.
SELECT user_id,
       region,
       array_to_string(declared_interests, ',') AS interests,
       (signup_date > %(new_since)s)::int AS is_new
FROM warehouse.users
WHERE signup_date <= %(day)s
