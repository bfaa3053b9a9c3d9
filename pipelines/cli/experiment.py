"""``newsrec experiment``: start, list, inspect and stop online experiments."""

from __future__ import annotations

from datetime import datetime

import typer

app = typer.Typer(help="Online experiments: arms, cohort, metrics and decisions.", no_args_is_help=True)


@app.command()
def create(
    name: str = typer.Argument(..., help="A unique name (also the default salt)."),
    challenger: list[str] = typer.Option([], "--challenger", help="A registered model version (repeatable)."),
    challenger_share: float = typer.Option(
        None, min=0, max=1, help="Share of the cohort for each challenger [params.yaml experiments.share_steps[0]]."
    ),
    popularity_share: float = typer.Option(0.0, min=0, max=1, help="Share of the popularity control arm."),
    champion_share: float = typer.Option(
        None, min=0, max=1, help="Share of the champion arm (default: the rest; given, all shares must sum to 1)."
    ),
    cohort_size: int = typer.Option(None, min=1, help="Pilot users in the experiment (default: every user)."),
    salt: str = typer.Option(None, help="Assignment salt (default: the name)."),
    start: datetime = typer.Option(
        None, formats=["%Y-%m-%d"], help="First logical date whose publish serves it (default: the next)."
    ),
) -> None:
    """Start an experiment: the next publish scores each arm's users with that arm's model."""
    from pipelines.experiments import lifecycle

    info = lifecycle.create(
        name, challenger, challenger_share, popularity_share, champion_share, cohort_size, salt,
        start.date() if start else None,
    )  # fmt: skip
    typer.echo(lifecycle.render(info))


@app.command()
def show(name: str = typer.Argument(None, help="Name or id (default: the running one, else the newest).")) -> None:
    """Arms, shares, cohort, per-day metrics and decisions of an experiment."""
    from pipelines.experiments import lifecycle

    typer.echo(lifecycle.render(lifecycle.get(name)))


@app.command("list")
def list_() -> None:
    """Every experiment, newest first, with its arms' shares and statuses."""
    from pipelines.experiments import lifecycle

    rows = lifecycle.listing()
    if not rows:
        typer.echo("no experiments yet")
    for experiment_id, name, status, started_on, stopped_on, arms in rows:
        span = f"{started_on or 'next publish'} .. {stopped_on or ''}".rstrip(" .")
        typer.echo(f"{experiment_id:>4}  {name:<24} {status:<9} {span:<24} {arms or ''}")


@app.command()
def stop(
    name: str = typer.Argument(..., help="Name or id of the running experiment."),
    reason: str = typer.Option("stopped by hand", help="Why (kept with the experiment)."),
) -> None:
    """Stop it: from the next publish on, everyone gets the champion again."""
    from pipelines.experiments import lifecycle

    info = lifecycle.stop(name, reason)
    typer.echo(f"experiment {info.name!r} stopped; the next publish serves the champion to everyone")
