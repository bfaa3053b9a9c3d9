"""``newsrec airflow``: run Airflow commands against the project's installation."""

from __future__ import annotations

import typer

app = typer.Typer(help="Airflow, configured for this project.", no_args_is_help=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(ctx: typer.Context) -> None:
    """Run any airflow command, e.g. `newsrec airflow run dags test newsrec_nightly 2026-01-05`."""
    from pipelines.local.airflow import exec_airflow

    exec_airflow(list(ctx.args))


@app.command()
def env() -> None:
    """Print the environment variables (export lines) that point Airflow at this project."""
    from pipelines.local.airflow import airflow_env

    for key, value in airflow_env().items():
        typer.echo(f"export {key}='{value}'")


@app.command()
def pools() -> None:
    """Create or resize the nightly's memory pool (`newsrec_memory`, params.yaml nightly.memory)."""
    from pipelines.local.airflow import exec_airflow, memory_pool_command

    exec_airflow(memory_pool_command())


@app.command()
def login() -> None:
    """Print how to log in to the local Airflow UI."""
    from pipelines.local.airflow import admin_password, airflow_env

    airflow_env()
    typer.echo(f"Airflow UI: http://localhost:8080  user: admin  password: {admin_password()}")


@app.command()
def up(
    port: int = typer.Option(8080, help="Port of the UI and API."),
    no_login: bool = typer.Option(False, help="Everyone is admin, no login (a local throwaway UI only)."),
) -> None:
    """Start api-server, scheduler and dag-processor in the background (logs in $AIRFLOW_HOME/logs)."""
    from pipelines.local.airflow import start_services

    url, pids = start_services(port, no_login=no_login)
    typer.echo(f"Airflow is up at {url} (pids {', '.join(map(str, pids))}); `newsrec airflow down` stops it")
    login()


@app.command()
def down() -> None:
    """Stop the background Airflow services started by `up`."""
    from pipelines.local.airflow import stop_services

    stopped = stop_services()
    typer.echo(f"stopped {stopped} Airflow process(es)")
