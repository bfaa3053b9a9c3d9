INSERT INTO ops.position_propensity
    (logical_date, position, propensity, impressions, clicks, method, first_day, last_day, details)
VALUES (%(day)s, %(position)s, %(propensity)s, %(impressions)s, %(clicks)s, %(method)s, %(first_day)s,
        %(last_day)s, %(details)s)
