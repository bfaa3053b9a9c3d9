"""``newsrec bench``: benchmarks whose results go to files (never timed unit tests)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

app = typer.Typer(help="Measure stages against what this machine can do.", no_args_is_help=True)


@app.command()
def etl(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="Day to build features for."),
    results: Path = typer.Option(Path("bench/results"), help="Folder for etl.json and etl.md."),
    runner: str = typer.Option(None, help="Beam runner for the Beam path."),
) -> None:
    """Beam feature build vs the same transform in plain pyarrow/pandas, same data."""
    from pipelines.bench.etl import run

    typer.echo(run(day.date(), results, runner).render())
