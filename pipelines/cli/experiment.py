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


@app.command()
def simulate(
    experiments: int = typer.Option(2000, "--experiments", min=1, help="Simulated experiments per rule."),
    nights: int = typer.Option(14, min=1, help="Nights each experiment runs at most."),
    users: int = typer.Option(15000, min=10, help="Cohort users (the pilot cohort: 15,000)."),
    lift: float = typer.Option(0.0, help="True relative lift of the challenger's dwell per user-day (0: A/A)."),
    rule: str = typer.Option(
        "both", help="new (harm-only canary, alpha-spending promotion step) | old (fixed interval) | both."
    ),
    seed: int = typer.Option(0, help="Seed (the same simulated users for both rules)."),
    share_steps: str = typer.Option(
        None, help="Challenger share steps, e.g. 0.5,1.0 (default: params.yaml experiments.share_steps)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Many experiments without the pipeline: resampled user-day outcomes, the real decision rule."""
    import json

    from pipelines.core import progress
    from pipelines.core.errors import NewsrecError
    from pipelines.experiments import lifecycle
    from pipelines.experiments import simulate as sim

    rules = ["new", "old"] if rule == "both" else [rule]
    if any(r not in ("new", "old") for r in rules):
        raise NewsrecError(f"--rule must be new, old or both, not {rule!r}")
    cfg = lifecycle.settings()
    if share_steps:
        try:
            cfg["share_steps"] = sorted(float(s) for s in share_steps.split(","))
        except ValueError:
            raise NewsrecError(f"--share-steps must be numbers separated by commas, not {share_steps!r}") from None
        if not all(0 < s <= 1 for s in cfg["share_steps"]) or cfg["share_steps"][-1] != 1.0:
            raise NewsrecError("--share-steps must lie in (0, 1] and end at 1.0")
    with progress.bar(experiments * nights * len(rules), "simulated experiment-nights", "night") as bar:
        result = sim.simulate(experiments, nights, users, lift, rules, seed, progress=bar, cfg=cfg)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else sim.render(result))
