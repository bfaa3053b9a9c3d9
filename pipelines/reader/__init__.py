"""The REST reader: serves the live batch of recommendations over HTTP (FastAPI + asyncpg).

It imports only config, db, its own queries, the export's line format
(:mod:`pipelines.serving.ndjson`) and web libraries, so it starts fast and never pulls in
Beam, Feast, the gates, training or Airflow (explanations load LightGBM and Feast on their
first call). Its run-time needs are ``requirements-reader.txt``. It connects as the read-only role
``newsrec_reader``, which can read the serving schema and, for explanations, the online
feature store ``feast_online``; nothing else, and it writes nowhere
(tests/reliability/test_reader_role.py).
"""
