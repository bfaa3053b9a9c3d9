-- Fresh planner statistics after bulk-loading events.
ANALYZE warehouse.events
