-- Task states of a DAG's newest run, in the Airflow metadata database.
SELECT ti.task_id, ti.state FROM task_instance ti JOIN dag_run r ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id WHERE r.id = (SELECT max(id) FROM dag_run WHERE dag_id = %s) ORDER BY ti.start_date NULLS LAST
