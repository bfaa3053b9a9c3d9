# The REST reader: only its run-time requirements (requirements-reader.txt: no Airflow, Beam,
# Great Expectations, Evidently or MLflow) and the package; runs as an unprivileged user.
# tests/reader_slim/check.sh installs the same into a fresh venv and runs the reader's tests.
FROM python:3.11-slim
COPY requirements-reader.txt /opt/newsrec/requirements-reader.txt
RUN pip install --no-cache-dir -r /opt/newsrec/requirements-reader.txt
COPY . /opt/newsrec
RUN pip install --no-cache-dir --no-deps -e /opt/newsrec && useradd --create-home newsrec
USER newsrec
WORKDIR /opt/newsrec
