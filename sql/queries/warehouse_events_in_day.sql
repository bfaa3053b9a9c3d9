-- Events loaded for one UTC day (the nightly ingest's check that an upstream load landed).
SELECT count(*) FROM warehouse.events WHERE event_ts >= %(start)s AND event_ts < %(end)s
