"""``newsrec db``: the database server and its migrations."""

from __future__ import annotations

import typer

app = typer.Typer(help="Start, stop and migrate the database.", no_args_is_help=True)


@app.command()
def start() -> None:
    """Start the embedded PostgreSQL (no-op when NEWSREC_DATABASE_URL is set)."""
    from pipelines.core import db

    url = db.database_url()
    db.ensure_database(db.main_database_name())
    typer.echo(f"database ready: {db.redact(url)}")


@app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL."""
    from pipelines.local import postgres

    typer.echo("stopped" if postgres.stop_embedded() else "not running")


@app.command()
def status() -> None:
    """Say where the database is and whether it answers."""
    from pipelines.core import db

    st = db.server_status()
    kind = "embedded" if st.embedded else "external"
    state = "running" if st.running else "not running"
    pid = f" (pid {st.pid})" if st.pid else ""
    typer.echo(f"{kind} PostgreSQL at {st.location}: {state}{pid}")
    if not st.running:
        raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Apply pending migrations from sql/migrations (safe to re-run)."""
    from pipelines.warehouse.migrations import migrate as run

    applied = run()
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied else "up to date")


@app.command()
def url(
    database: str = typer.Option(None, help="A side database, e.g. '{main}_mlflow'."),
    sqlalchemy: bool = typer.Option(False, "--sqlalchemy", help="SQLAlchemy spelling."),
) -> None:
    """Print the connection URL (starts the embedded server if needed)."""
    from pipelines.core import db

    typer.echo(db.sqlalchemy_url(database) if sqlalchemy else db.database_url(database))
