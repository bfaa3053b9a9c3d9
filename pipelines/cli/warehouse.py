"""``newsrec warehouse``: fill the warehouse (simulator, MIND import and export), look at it, say what its
source has (the data profile) and check it against the contract."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path

import typer

app = typer.Typer(help="Fill and inspect the warehouse.", no_args_is_help=True)

FAULT_HELP = "Inject a fault: null-dwell, negative-dwell, duplicates, thin-day, unknown-articles."


def _date(value: datetime | None) -> date | None:
    return value.date() if value else None


DateOpt = typer.Option(None, formats=["%Y-%m-%d"], help="A date, YYYY-MM-DD.")


@app.command()
def seed(
    users: int = typer.Option(None, min=10, help="Users in the seeded base [params.yaml]."),
    articles_per_day: int = typer.Option(None, min=10, help="New articles a day [params.yaml]."),
    days: int = typer.Option(None, min=1, help="Days of reading events [params.yaml]."),
    start: datetime = typer.Option(None, formats=["%Y-%m-%d"], help="First day of events [default: today - days]."),
    seed_: int = typer.Option(None, "--seed", help="Random seed [params.yaml]."),
    position_bias: float = typer.Option(None, min=0, help="Strength of the position bias."),
    drift_from: datetime = typer.Option(None, formats=["%Y-%m-%d"], help="Tastes shift from this day on."),
    fault: list[str] = typer.Option([], help=FAULT_HELP),
    fault_date: datetime = typer.Option(
        None, formats=["%Y-%m-%d"], help="Day that gets the faults [default: last day]."
    ),
) -> None:
    """Replace the warehouse with a simulated world and some days of reading."""
    from pipelines.core.config import params
    from pipelines.warehouse import simulator

    days = days or int(params("simulator").get("days", 14))
    first = _date(start) or (date.today() - timedelta(days=days))
    cfg = simulator.SimConfig.from_params(
        users=users,
        articles_per_day=articles_per_day,
        start=first,
        seed=seed_,
        position_bias=position_bias,
        drift_from=_date(drift_from),
    )
    t0 = time.perf_counter()
    results = simulator.seed(cfg, days, fault, _date(fault_date))
    elapsed = time.perf_counter() - t0
    rows = cfg.users + sum(r.articles + r.impressions + r.reads + r.new_users for r in results)
    typer.echo(
        f"seeded {cfg.users:,} users, {len(results)} day(s) from {cfg.start}: "
        f"{sum(r.articles for r in results):,} articles, "
        f"{sum(r.impressions for r in results):,} impressions, "
        f"{sum(r.reads for r in results):,} reads in {elapsed:.1f} s "
        f"({rows / elapsed:,.0f} warehouse rows/s)"
    )


@app.command("simulate-day")
def simulate_day(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="The day to simulate."),
    fault: list[str] = typer.Option([], help=FAULT_HELP),
    drift_from: datetime = typer.Option(
        None, formats=["%Y-%m-%d"], help="Tastes shift from this day on (kept for later days)."
    ),
) -> None:
    """Append one day to the simulated world (re-running a day replaces it).

    Readers see the live batch's lists in a share of their sessions (params.yaml
    simulator.recommended_session_share), so the day answers what was published."""
    from pipelines.warehouse import simulator

    r = simulator.simulate_day(day.date(), fault, _date(drift_from))
    extra = f", faults: {', '.join(r.faults)}" if r.faults else ""
    if r.batch_id is not None:
        extra += f"; {r.recommended:,} impressions showed the lists of batch {r.batch_id}"
    typer.echo(
        f"{r.day}: {r.articles:,} articles, {r.impressions:,} impressions, {r.reads:,} reads, "
        f"{r.new_users:,} new users{' (drifted)' if r.drifted else ''}{extra}"
    )


@app.command("import-mind")
def import_mind(
    directory: Path = typer.Argument(..., help="Folder with news.tsv and behaviors.tsv."),
) -> None:
    """Load the MIND news-recommendation format into the warehouse (all or nothing)."""
    from pipelines.warehouse import mind

    result = mind.import_mind(directory)
    typer.echo(result.render())


@app.command("export-mind")
def export_mind(
    directory: Path = typer.Argument(..., help="Folder to write news.tsv, behaviors.tsv and truth.tsv into."),
    drop_articles: float = typer.Option(
        0.0, min=0.0, max=0.99, help="Share of the articles left out of news.tsv (a seeded choice)."
    ),
    seed_: int = typer.Option(0, "--seed", help="Seed of the choice of dropped articles."),
    history_days: int = typer.Option(1, min=0, help="First days of the world written as history only."),
) -> None:
    """Write the warehouse (a simulated world) in the MIND format, the simulator's truth beside it.

    No dwell (MIND has none); each user's history is their reads in the first --history-days
    days; truth.tsv gives the latent relevance per impression id and position."""
    from pipelines.warehouse.mind import export

    result = export.export_mind(directory, drop_articles=drop_articles, seed=seed_, history_days=history_days)
    typer.echo(result.render())


@app.command()
def summary() -> None:
    """Print table counts and per-day activity."""
    from pipelines.warehouse.summary import summarize

    typer.echo(summarize().render())


@app.command()
def profile(
    source: str = typer.Option(None, help="Name of the data's source (e.g. mind, our-events)."),
    dwell: bool | None = typer.Option(None, "--dwell/--no-dwell", help="Reads carry dwell times (else clicks only)."),
    regions: bool | None = typer.Option(None, "--regions/--no-regions", help="Users have a known region."),
    publications: bool | None = typer.Option(
        None, "--publications/--no-publications", help="Several publications with trust scores."
    ),
    publish_times: bool | None = typer.Option(
        None, "--publish-times/--no-publish-times", help="Articles have real publish times."
    ),
    positions: str = typer.Option(None, help="known (positions are the display order) or unknown."),
    surfaces: bool | None = typer.Option(None, "--surfaces/--no-surfaces", help="Events say which surface."),
    infer: bool = typer.Option(False, "--infer", help="Store the profile inferred from the data (flags override)."),
) -> None:
    """Show the warehouse's data profile; with flags or --infer, set it (no profile = everything present)."""
    from pipelines.warehouse import profile as data_profile

    if positions not in (None, "known", "unknown"):
        raise typer.BadParameter("choose known or unknown", param_hint="'--positions'")
    changes = {
        "source": source,
        "dwell": dwell,
        "regions": regions,
        "publications": publications,
        "publish_times": publish_times,
        "positions_known": None if positions is None else positions == "known",
        "surfaces": surfaces,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes and not infer:
        typer.echo(data_profile.current().render())
        return
    stored = data_profile.store(changes, from_data=infer, set_by=f"newsrec warehouse profile ({data_profile.who()})")
    typer.echo(stored.render("Stored data profile"))


@app.command()
def check() -> None:
    """Validate the warehouse against the contract (docs/data.md) and print the profile it
    infers; exit 1 when a required table, column or kind of row is missing."""
    from pipelines.warehouse import contract

    report = contract.check_warehouse()
    typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(1)
