"""``newsrec cluster``: a local Dask cluster (scheduler + worker processes) for trying scale-out.

Point the stages at it with ``NEWSREC_DASK_ADDRESS`` (or ``--dask-address``). Dask is
imported inside the commands only, so ``newsrec --help`` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Start, inspect and stop a local Dask cluster.", no_args_is_help=True)


@app.command()
def up(
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes."),
    threads: int = typer.Option(1, "--threads", min=1, help="Threads per worker."),
    memory_limit: str = typer.Option("auto", "--memory-limit", help="Per worker, e.g. 4GiB ('auto': RAM / workers)."),
    port: int = typer.Option(0, help="Scheduler port (0: any free port)."),
    dashboard_port: int = typer.Option(8787, help="Dashboard port (the dashboard needs bokeh)."),
) -> None:
    """Start a scheduler and worker processes in the background (with this venv and environment)."""
    from pipelines.local import dask_cluster as cluster

    state = cluster.up(workers, threads, memory_limit, port, dashboard_port)
    _, info = cluster.status()
    typer.echo(info.render() if info else f"address: {state.address}")
    typer.echo(f"logs: {state.log_dir}")
    typer.echo(f"use it: export NEWSREC_DASK_ADDRESS={state.address}")


@app.command()
def status() -> None:
    """Address, workers, threads, memory and dashboard of this home's local cluster."""
    from pipelines.local import dask_cluster as cluster

    state, info = cluster.status()
    if info is None:
        typer.echo("local Dask cluster: not running" + (f" (last at {state.address})" if state else ""))
        raise typer.Exit(1)
    typer.echo(info.render())


@app.command()
def down() -> None:
    """Stop this home's local cluster (workers first, then the scheduler)."""
    from pipelines.local import dask_cluster as cluster

    state = cluster.down()
    typer.echo(f"stopped the Dask cluster at {state.address}" if state else "no local Dask cluster")
