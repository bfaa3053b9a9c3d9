-- Events of one UTC day.
SELECT count(*) FROM warehouse.events WHERE event_ts >= %s AND event_ts < %s
