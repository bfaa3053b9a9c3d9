"""One-machine tooling, apart from the production path: the embedded PostgreSQL, a local
Airflow, a local Dask cluster and the demo. A team deployment points the settings at its own
services and never needs these."""
