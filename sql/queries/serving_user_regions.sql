-- Every region that users live in; users of an unknown region get the GLOBAL fallback list.
SELECT DISTINCT region FROM warehouse.users WHERE region <> 'unknown' ORDER BY 1
