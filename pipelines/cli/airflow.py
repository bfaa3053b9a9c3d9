"""``newsrec airflow``: run Airflow commands against the project's installation."""

from __future__ import annotations

import typer

app = typer.Typer(help="Airflow, configured for this project.", no_args_is_help=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(ctx: typer.Context) -> None:
    """Run any airflow command, e.g. `newsrec airflow run dags test newsrec_nightly 2026-01-05`."""
    from pipelines.airflow_env import exec_airflow

    exec_airflow(list(ctx.args))


@app.command()
def env() -> None:
    """Print the environment variables (export lines) that point Airflow at this project."""
    from pipelines.airflow_env import airflow_env

    for key, value in airflow_env().items():
        typer.echo(f"export {key}='{value}'")


@app.command()
def login() -> None:
    """Print how to log in to the local Airflow UI."""
    from pipelines.airflow_env import admin_password, airflow_env

    airflow_env()
    typer.echo(f"Airflow UI: http://localhost:8080  user: admin  password: {admin_password()}")
