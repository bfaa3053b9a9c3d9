-- Every region that users live in.
SELECT DISTINCT region FROM warehouse.users ORDER BY 1
