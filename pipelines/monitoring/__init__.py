"""What Prometheus scrapes besides the reader: the ops exporter (:mod:`.ops_exporter`)."""
