-- Users who had signed up by a day.
SELECT count(*) FROM warehouse.users WHERE signup_date <= %s
