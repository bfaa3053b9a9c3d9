# Airflow's official image plus the project's pinned requirements and the newsrec package.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt /opt/newsrec/requirements.txt
RUN pip install --no-cache-dir --no-deps -r /opt/newsrec/requirements.txt
COPY --chown=airflow:root . /opt/newsrec
RUN pip install --no-cache-dir --no-deps -e /opt/newsrec
WORKDIR /opt/newsrec
