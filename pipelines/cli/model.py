"""``newsrec train``, ``newsrec evaluate`` and ``newsrec model``: the registry and its champion."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer

app = typer.Typer(help="Inspect the model registry, promote and roll back.", no_args_is_help=True)


def train(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="Logical date (the test day)."),
    trials: int = typer.Option(None, min=1, help="Search trials [params.yaml training.hpo.trials]."),
    minutes: float = typer.Option(None, min=0.1, help="Search time budget [params.yaml training.hpo.minutes]."),
    train_days: int = typer.Option(None, min=1, help="Days to train on [params.yaml training.train_days]."),
    objective: str = typer.Option(
        None,
        help="plain or debiased (position-aware LambdaRank); default params.yaml training.objective "
        "(auto: both, the one the gate's paired rule prefers).",
    ),
    mode: str = typer.Option("full", help="full (search, from scratch) or warm (continue the champion)."),
    compare_objectives: bool = typer.Option(
        False, help="Fit plain and debiased with the same parameters and compare them; registers nothing."
    ),
) -> None:
    """Train a challenger, evaluate it, register it, and promote it if it beats the champion."""
    from pipelines.model import train as training

    if objective is not None and objective not in training.ranker.OBJECTIVES:
        raise typer.BadParameter("choose plain or debiased", param_hint="'--objective'")
    if mode not in training.MODES:
        raise typer.BadParameter("choose full or warm", param_hint="'--mode'")
    if compare_objectives:
        from pipelines.model import objectives

        typer.echo(objectives.render_comparison(objectives.compare_objectives(day.date(), train_days)))
        return
    from pipelines.core import locks

    d = day.date()  # as the nightly's train stage holds it (pipelines.core.locks)
    with locks.hold(f"train {d}", [*locks.read_window(d), locks.registry(locks.EXCLUSIVE)]):
        typer.echo(training.train(d, trials, minutes, train_days, objective, mode).render())


def evaluate(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="The held-out day."),
    model: str = typer.Option("champion", help="Version number or alias."),
    as_json: bool = typer.Option(False, "--json", help="Print both tables as one JSON document."),
    truth: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="truth.tsv of `warehouse export-mind`: truth NDCG@10 per impression on an imported simulated world.",
    ),
) -> None:
    """Evaluate a registered model on one day next to the baselines (and the oracle), also per impression."""
    from pipelines.features.matrix import check_signature
    from pipelines.model import counterfactual, impression_eval, registry
    from pipelines.model import evaluate as ev
    from pipelines.warehouse import profile as data_profile

    loaded = registry.load(model)
    check_signature(loaded.spec, data_profile.current())
    split, scores = ev.score_on_day(loaded, day.date())
    table = ev.evaluate(split, scores)
    per_impression = impression_eval.evaluate_impressions(split, scores, truth)
    unbiased = counterfactual.evaluate_day(split, scores, day.date())
    if as_json:
        from pipelines.core.jsonable import json_safe

        doc = {"version": loaded.version, "day": day.date(), **table, "per_impression": per_impression}
        doc["counterfactual"] = unbiased
        typer.echo(json.dumps(json_safe(doc), indent=2))
        return
    typer.echo(f"model version {loaded.version} on {day.date()} ({table['rows']:,} impressions)\n")
    typer.echo(ev.render(table))
    typer.echo("")
    typer.echo(impression_eval.render(per_impression))
    typer.echo("")
    typer.echo(counterfactual.render(unbiased, {name: m["ndcg@10"] for name, m in table["overall"].items()}))


@app.command("list")
def list_() -> None:
    """All registered versions with their aliases and data windows."""
    from pipelines.model import registry

    for v in registry.list_versions():
        tags = v["tags"]
        aliases = ",".join(v["aliases"]) or "-"
        typer.echo(
            f"v{v['version']:<4} {aliases:<28} date {tags.get('logical_date', '?')}  "
            f"window {tags.get('data_window', '?')}  mode {tags.get('training_mode', '?')}"
        )


@app.command()
def show(version: str = typer.Argument("champion", help="Version number or alias.")) -> None:
    """Lineage, signature and metrics of one version."""
    from pipelines.core.errors import NewsrecError
    from pipelines.model import registry

    info = registry.version_info(version)
    if info is None:
        raise NewsrecError(f"no model {version!r}")
    info["metrics"] = registry.run_metrics(info["run_id"])
    info["tags"]["matrix_spec"] = json.loads(info["tags"].get("matrix_spec", "{}"))
    typer.echo(json.dumps(info, indent=2, default=str))


@app.command()
def promote(
    version: str = typer.Argument(..., help="Version to make champion."),
    reason: str = typer.Option(..., "--reason", help="Why the promotion gate is overridden (recorded)."),
) -> None:
    """Make a complete version champion by hand: an override of the promotion gate, recorded
    with its reason in ops.model_decisions (kind 'override')."""
    from pipelines.core import locks
    from pipelines.model import promotion

    with locks.hold("model promote", [locks.registry(locks.EXCLUSIVE)]):
        before, version = promotion.promote_by_hand(version, reason)
    typer.echo(f"champion: {before or 'none'} -> {version} (override recorded: {reason.strip()})")


@app.command()
def rollback(
    to: str = typer.Option(None, "--to", help="Version to make champion (default: the one it replaced)."),
    reason: str = typer.Option("", "--reason", help="Why (recorded with the rollback)."),
) -> None:
    """Move the champion back to the version it replaced (one step), or to --to VERSION;
    recorded in ops.model_decisions (kind 'rollback')."""
    from pipelines.core import locks
    from pipelines.model import promotion

    with locks.hold("model rollback", [locks.registry(locks.EXCLUSIVE)]):
        old, new = promotion.rollback_champion(to, reason=reason or "newsrec model rollback")
    typer.echo(f"champion: {old} -> {new}")
