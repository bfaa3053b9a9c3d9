"""The ``newsrec`` command. It parses, calls one stage function, and prints.

Stage modules (and the heavy libraries behind them) are imported inside the commands, so
``newsrec --help`` and light commands start fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

import typer

from pipelines.cli import airflow as airflow_cli
from pipelines.cli import bench as bench_cli
from pipelines.cli import check as check_cli
from pipelines.cli import cluster as cluster_cli
from pipelines.cli import dataset as dataset_cli
from pipelines.cli import db as db_cli
from pipelines.cli import experiment as experiment_cli
from pipelines.cli import features as features_cli
from pipelines.cli import model as model_cli
from pipelines.cli import ops as ops_cli
from pipelines.cli import reader as reader_cli
from pipelines.cli import serve as serve_cli
from pipelines.cli import warehouse as warehouse_cli
from pipelines.core.errors import NewsrecError

app = typer.Typer(
    name="newsrec",
    help="Nightly batch pipelines of the newsrec news recommender.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(db_cli.app, name="db")
app.add_typer(warehouse_cli.app, name="warehouse")
app.add_typer(features_cli.app, name="features")
app.add_typer(check_cli.app, name="check")
app.add_typer(bench_cli.app, name="bench")
app.add_typer(cluster_cli.app, name="cluster")
app.add_typer(serve_cli.app, name="serve")
app.add_typer(reader_cli.app, name="reader")
app.add_typer(airflow_cli.app, name="airflow")
app.add_typer(model_cli.app, name="model")
app.add_typer(dataset_cli.app, name="dataset")
app.add_typer(experiment_cli.app, name="experiment")
app.add_typer(ops_cli.app, name="ops")
app.command("train")(model_cli.train)
app.command("evaluate")(model_cli.evaluate)


@app.command("run-day")
def run_day(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="Logical date (a UTC day)."),
    ingest: str = typer.Option("simulate", help="simulate: simulate the day; warehouse: use loaded data."),
    force_retrain: bool = typer.Option(False, help="Train a challenger whatever the checker says."),
    trials: int = typer.Option(None, min=1, help="Search trials when training."),
    minutes: float = typer.Option(None, min=0.1, help="Search budget in minutes when training."),
    dry_run: bool = typer.Option(False, help="Score but do not publish."),
) -> None:
    """Run every nightly stage for one date without Airflow (same functions as the DAG)."""
    from pipelines.nightly import runner

    steps = runner.run_day(day.date(), ingest, force_retrain, trials, minutes, dry_run)
    typer.echo(json.dumps(steps, indent=2, default=str))


@app.command()
def backfill(
    first: datetime = typer.Option(..., "--from", formats=["%Y-%m-%d"], help="First date."),
    last: datetime = typer.Option(..., "--to", formats=["%Y-%m-%d"], help="Last date."),
    ingest: str = typer.Option("warehouse", help="warehouse: use loaded data; simulate: simulate each day."),
    trials: int = typer.Option(None, min=1, help="Search trials when training."),
    minutes: float = typer.Option(None, min=0.1, help="Search budget in minutes when training."),
) -> None:
    """Run the nightly stages date by date, oldest first (stops at the first failing date)."""
    from pipelines.nightly import plan, runner

    options = plan.RunOptions(ingest_source=ingest, trials=trials, minutes=minutes)
    for day, steps in runner.backfill(first.date(), last.date(), options):
        published = steps.get("publish", {})
        trained = steps.get("train", {})
        batch = (
            f"batch {published['batch_id']} ({published.get('users', 0):,} users)"
            if published.get("batch_id")
            else (f"nothing published ({published['reason']})" if published.get("reason") else "nothing published")
        )
        training = (
            f"trained v{trained['version']}"
            if trained.get("version")
            else (f"no training ({trained['reason']})" if trained.get("reason") else "no training")
        )
        typer.echo(f"{day}: {batch}, {training}, {steps['seconds']} s")


@app.command()
def demo() -> None:
    """The demo: a small simulated world, the nightly DAG through Airflow, one reader request."""
    from pipelines.local.demo import main as run

    run()


@app.command("ui-check")
def ui_check(
    home: Path = typer.Option(Path(".newsrec-ui"), help="Its own NEWSREC_HOME (own embedded database), wiped first."),
    port: int = typer.Option(8089, help="Port of the throwaway Airflow UI and API."),
    out: Path = typer.Option(Path("docs/img"), help="Folder for the screenshots of the pages that passed."),
    timeout: float = typer.Option(1800, min=60, help="Seconds the nightly run may take."),
    chromium: Path = typer.Option(Path("/usr/bin/chromium"), help="The Chromium binary (Debian's package)."),
) -> None:
    """The UIs in headless Chromium on a real scheduler run: grid, graph, reports, extra link, GE, Evidently."""
    from pipelines.local.ui_check import main as run

    failed = run(home, port, out, timeout, chromium=chromium, say=typer.echo)
    if failed:
        raise typer.Exit(1)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
    dask_address: str = typer.Option(
        None,
        "--dask-address",
        help="Run the ETL, training and scoring on this Dask scheduler (tcp://host:8786) [NEWSREC_DASK_ADDRESS].",
    ),
) -> None:
    if dask_address:
        from pipelines.core.config import reset_caches

        os.environ["NEWSREC_DASK_ADDRESS"] = dask_address  # the one switch; workers of stages read it
        reset_caches()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Entry point: user-facing errors become one line on stderr and exit code 1."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        app()
    except NewsrecError as exc:
        typer.echo(f"newsrec: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("newsrec: interrupted", err=True)
        sys.exit(130)
