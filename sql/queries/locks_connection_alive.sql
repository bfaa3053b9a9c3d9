-- A no-op round trip: does the connection holding a session lock still work?
SELECT 1
