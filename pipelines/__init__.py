"""newsrec: the nightly batch pipelines behind a news-article recommender.

Everything here runs without Airflow; the DAGs in ``dags/`` and the ``newsrec`` CLI are thin
callers of the stage modules in this package.
"""

__version__ = "0.1.0"
