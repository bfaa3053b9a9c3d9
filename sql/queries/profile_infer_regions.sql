-- Regions are present when any user has a known one.
SELECT EXISTS (SELECT 1 FROM warehouse.users WHERE region IS NOT NULL AND lower(region) <> 'unknown')
