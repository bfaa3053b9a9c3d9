"""``newsrec ops``: what on-call's tooling reads from the ops tables."""

from __future__ import annotations

import typer

app = typer.Typer(help="Ops tooling: the Prometheus exporter over the ops tables.", no_args_is_help=True)


@app.command()
def exporter(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 in a container)."),
    port: int = typer.Option(9464, min=0, max=65535, help="Port of /metrics (0: any free port, printed)."),
) -> None:
    """Serve the nightly's outcome, the live batch and the newest drift verdicts as Prometheus
    gauges on /metrics, read from the database at each scrape (read-only sessions)."""
    import threading

    from pipelines.core import db
    from pipelines.monitoring import ops_exporter

    url = ops_exporter.exporter_database_url()
    server = ops_exporter.serve(host, port, url)
    typer.echo(f"ops exporter on http://{host}:{server.server_port}/metrics (database {db.redact(url)})", err=True)
    threading.Event().wait()
