"""``newsrec features``: build partitions with Beam, register and materialize in Feast."""

from __future__ import annotations

from datetime import datetime

import typer

app = typer.Typer(help="Build and serve features (Beam ETL -> Feast).", no_args_is_help=True)


@app.command()
def build(
    day: datetime = typer.Option(None, "--date", formats=["%Y-%m-%d"], help="One logical date."),
    first: datetime = typer.Option(None, "--from", formats=["%Y-%m-%d"], help="Backfill: first date."),
    last: datetime = typer.Option(None, "--to", formats=["%Y-%m-%d"], help="Backfill: last date."),
    runner: str = typer.Option(None, help="Beam runner [NEWSREC_BEAM_RUNNER, default FnApiRunner]."),
    beam_arg: list[str] = typer.Option([], help="Extra Beam pipeline option, e.g. --beam-arg=--direct_num_workers=2."),
    refresh_window: bool = typer.Option(False, help="Recompute the daily partials of the whole 28-day window."),
) -> None:
    """Compute the feature views of a date (or each date of a range) and publish them."""
    from datetime import timedelta

    from pipelines.core import locks
    from pipelines.core.errors import NewsrecError
    from pipelines.features.build import build as build_day

    options = {"runner": runner, "beam_args": beam_arg, "refresh_window": refresh_window}
    if day and not (first or last):
        first = last = day
    elif not (first and last and not day):
        raise NewsrecError("give either --date D, or --from D1 --to D2")
    if last < first:
        raise NewsrecError(f"--to {last.date()} is before --from {first.date()}")
    d = first.date()
    while d <= last.date():  # each day as the nightly's features stage holds it (pipelines.core.locks)
        rewritten = locks.window_days(d) if refresh_window else [d]  # --refresh-window: every partial
        wanted = [*(locks.features_day(x, locks.EXCLUSIVE) for x in rewritten), *locks.read_window(d)]
        with locks.hold(f"features build {d}", wanted):
            typer.echo(build_day(d, **options).render())
        d += timedelta(days=1)


@app.command()
def apply() -> None:
    """Register entities, views and the feature service with Feast (idempotent)."""
    from pipelines.features.store import apply as run

    objects = run()
    typer.echo(f"applied {len(objects)} Feast objects: {', '.join(objects)}")


@app.command()
def materialize(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="Logical date to load online."),
) -> None:
    """Load the online store with the values known at the end of a date."""
    from pipelines.core import locks
    from pipelines.features.store import materialize as run

    d = day.date()
    with locks.hold(f"features materialize {d}", [*locks.read_window(d), locks.online_store(locks.EXCLUSIVE)]):
        rows = run(d)
    typer.echo("materialized " + ", ".join(f"{v} {n:,}" for v, n in rows.items()))


@app.command()
def online(
    user_id: int = typer.Option(..., help="A user id."),
    article_id: int = typer.Option(..., help="An article id."),
) -> None:
    """Show the online feature values for one (user, article) pair."""
    from pipelines.features.store import online_features

    for key, value in online_features(user_id, article_id).items():
        typer.echo(f"{key:<30} {value}")
