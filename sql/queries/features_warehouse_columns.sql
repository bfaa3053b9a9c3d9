-- The warehouse's tables and columns (the ETL checks it has what it reads).
SELECT table_schema, table_name, column_name FROM information_schema.columns WHERE table_schema = 'warehouse'
