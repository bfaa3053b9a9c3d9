"""The ``newsrec`` command. It parses, calls one stage function, and prints.

Stage modules (and the heavy libraries behind them) are imported inside the commands, so
``newsrec --help`` and light commands start fast.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from pipelines.cli import airflow as airflow_cli
from pipelines.cli import bench as bench_cli
from pipelines.cli import check as check_cli
from pipelines.cli import dataset as dataset_cli
from pipelines.cli import db as db_cli
from pipelines.cli import features as features_cli
from pipelines.cli import model as model_cli
from pipelines.cli import reader as reader_cli
from pipelines.cli import serve as serve_cli
from pipelines.cli import warehouse as warehouse_cli
from pipelines.errors import NewsrecError

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
app.add_typer(serve_cli.app, name="serve")
app.add_typer(reader_cli.app, name="reader")
app.add_typer(airflow_cli.app, name="airflow")
app.add_typer(model_cli.app, name="model")
app.add_typer(dataset_cli.app, name="dataset")
app.command("train")(model_cli.train)
app.command("evaluate")(model_cli.evaluate)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
) -> None:
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
