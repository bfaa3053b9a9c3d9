"""newsrec: the nightly batch pipelines behind a news-article recommender.

Everything here runs without Airflow; the DAGs in ``dags/`` and the ``newsrec`` CLI are thin
callers of the stage modules in this package.

OpenMP threads (LightGBM's, scikit-learn's) wait for work by spinning (libgomp's default
``OMP_WAIT_POLICY``), which is right on a machine of their own and ruinous beside other busy
processes: the nightly stages that the DAG runs side by side, Airflow, PostgreSQL, parallel
test workers. With one busy neighbour on 2 cores, six LightGBM fits of an 8,000-row set took
41-92 s of CPU spinning, 5.5-6.5 s with passive waits. The runtime reads the variable once,
when it loads, so it is set here, before any stage module imports LightGBM (an explicit
setting in the environment wins).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
