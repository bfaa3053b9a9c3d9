DELETE FROM ops.position_propensity WHERE logical_date = %(day)s
