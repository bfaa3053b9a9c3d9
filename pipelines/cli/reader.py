"""``newsrec reader``: run the REST reader and manage its API keys."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

import typer

app = typer.Typer(
    help="The REST reader: `newsrec reader serve` (or just `newsrec reader`) and API keys.",
    invoke_without_command=True,
)
keys_app = typer.Typer(help="API keys of the reader (stored hashed; a key is shown once).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.callback()
def _default(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        serve(host=None, port=None, workers=None, log_level="info", access_log=False)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on [serving.reader.host, 127.0.0.1]."),
    port: int = typer.Option(None, min=1, max=65535, help="Port [serving.reader.port, 8000]."),
    workers: int = typer.Option(None, min=1, max=64, help="uvicorn worker processes [serving.reader.workers, 2]."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    access_log: bool = typer.Option(False, help="Log every request (metrics count them anyway)."),
) -> None:
    """Serve recommendations over HTTP with uvicorn (OpenAPI docs at /docs)."""
    import uvicorn

    from pipelines.reader.settings import ReaderParams, reader_database_url

    p = ReaderParams.from_params()
    reader_database_url()  # fail now, with a one-line error, when the configuration is wrong
    options = {
        "host": host or p.host,
        "port": port or p.port,
        "log_level": log_level,
        "access_log": access_log,
    }
    workers = workers or p.workers
    if workers > 1:
        with metrics_folder() as folder:
            # Set before the workers start (they import prometheus_client afresh): each
            # writes its samples there and /metrics adds them up (pipelines.reader.prometheus).
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
            uvicorn.run("pipelines.reader.app:create_app", factory=True, workers=workers, **options)
    else:
        from pipelines.reader.app import create_app

        uvicorn.run(create_app(), **options)


@contextlib.contextmanager
def metrics_folder() -> Iterator[str]:
    """A fresh folder for one start's multiprocess metrics (a previous start's samples would
    count again), inside ``PROMETHEUS_MULTIPROC_DIR`` when the operator set one; removed
    when the reader stops."""
    folder = tempfile.mkdtemp(prefix="newsrec-reader-metrics-", dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@keys_app.command("create")
def create(name: str = typer.Option(..., "--name", help="Who uses the key, e.g. 'email-sender'.")) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from pipelines.reader.keys import create_key

    key_id, key = create_key(name)
    typer.echo(f"key {key_id} for {name!r} (store it now; it cannot be shown again):")
    typer.echo(key)


@keys_app.command("revoke")
def revoke(key_id: int = typer.Argument(..., min=1, help="The key's id (see `keys list`).")) -> None:
    """Revoke a key; readers stop accepting it within serving.reader.key_cache_seconds."""
    from pipelines.reader.keys import revoke_key

    revoke_key(key_id)
    typer.echo(f"revoked key {key_id}")


@keys_app.command("list")
def list_() -> None:
    """List keys (id, name, first characters, created, revoked)."""
    from pipelines.reader.keys import list_keys

    rows = list_keys()
    if not rows:
        typer.echo("no API keys; create one with `newsrec reader keys create --name NAME`")
        return
    typer.echo(f"{'id':>5}  {'prefix':<8}  {'created':<19}  {'revoked':<19}  name")
    for k in rows:
        revoked = f"{k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else "-"
        typer.echo(
            f"{k.key_id:>5}  {(k.prefix or '') + '…':<8}  {k.created_at:%Y-%m-%d %H:%M:%S}  {revoked:<19}  {k.name}"
        )
