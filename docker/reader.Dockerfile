# The REST reader: the project's requirements and package; runs as an unprivileged user.
FROM python:3.11-slim
COPY requirements.txt /opt/newsrec/requirements.txt
RUN pip install --no-cache-dir -r /opt/newsrec/requirements.txt
COPY . /opt/newsrec
RUN pip install --no-cache-dir --no-deps -e /opt/newsrec && useradd --create-home newsrec
USER newsrec
WORKDIR /opt/newsrec
