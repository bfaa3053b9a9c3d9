"""``newsrec check``: the quality and drift gates of a day, with exit codes a scheduler acts on.

Exit codes: 0 the gate passed (warnings may be printed); 1 a critical quality check failed,
drift crossed its threshold, or the gate could not run (the message says which); 2 bad usage.
`check retrain` exits 0 when the day should retrain and 3 when it need not.
"""

from __future__ import annotations

from datetime import datetime

import typer

app = typer.Typer(help="Quality and drift gates of a day (exit 1 when a gate fails).", no_args_is_help=True)

DateOpt = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="The logical date, YYYY-MM-DD.")


@app.command()
def quality(
    day: datetime = DateOpt,
    stage: str = typer.Option("all", help="raw (warehouse extract of D), features (partitions of D) or all."),
) -> None:
    """Run the Great Expectations suites of a day; exit 1 on any critical failure."""
    if stage not in ("raw", "features", "all"):
        raise typer.BadParameter("choose raw, features or all", param_hint="'--stage'")
    from pipelines.gates.quality import check_quality

    results = check_quality(day.date(), stage)
    for result in results:
        typer.echo(result.render())
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@app.command()
def drift(
    day: datetime = DateOpt,
    reference_from: datetime = typer.Option(
        None,
        formats=["%Y-%m-%d"],
        help="First reference day (default: as the nightly run, the champion's training window).",
    ),
    reference_to: datetime = typer.Option(None, formats=["%Y-%m-%d"], help="Last reference day."),
    kind: str = typer.Option("all", help="features, target (labels of D) or all."),
) -> None:
    """Compare a day's features and labels with reference days (Evidently); exit 1 on drift."""
    if kind not in ("features", "target", "all"):
        raise typer.BadParameter("choose features, target or all", param_hint="'--kind'")
    if (reference_from is None) != (reference_to is None):
        raise typer.BadParameter("give both --reference-from and --reference-to, or neither")
    from pipelines.gates import drift as drift_gate
    from pipelines.gates import reference as drift_reference

    if reference_from is not None:
        reference = drift_gate.reference_range(reference_from.date(), reference_to.date())
    else:
        reference = drift_reference.drift_reference(day.date())
    results = []
    if kind in ("features", "all"):
        results.append(drift_gate.check_drift(day.date(), reference))
    if kind in ("target", "all"):
        results.append(drift_gate.check_target_drift(day.date(), reference))
    for result in results:
        typer.echo(result.render())
    if any(r.drifted for r in results):
        raise typer.Exit(1)


@app.command()
def retrain(
    day: datetime = DateOpt,
    force: bool = typer.Option(False, help="Force retraining (recorded as the reason)."),
    drift_share: float = typer.Option(
        None, min=0.0, max=1.0, help="Share of drifted features [the day's latest drift result]."
    ),
) -> None:
    """Decide whether to retrain for a day; exit 0 = retrain, 3 = no retraining needed."""
    from pipelines.gates import retrain as checker

    share = drift_share if drift_share is not None else checker.latest_drift_share(day.date())
    decision = checker.decide(day.date(), drift_share=share, force=force)
    typer.echo(decision.render())
    if not decision.retrain:
        raise typer.Exit(3)
