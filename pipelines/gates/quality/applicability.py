"""Which checks apply on day D: the warehouse's data profile, and the history a band check needs.

A check lists the profile parts its data comes from (``Check.needs``). When the source lacks
one (MIND has no dwell), the check is not run and is reported as *not applicable*: neither
passed nor failed, stored with ``success`` NULL and the reason.

A band check (``Check.band``) compares D with the trailing window of
``quality.raw.article_history_days`` days. **Not enough history** means fewer than
``quality.raw.min_history_days`` earlier days *with data* in that window (for the article band:
days on which any article was published). Then the band is too thin to judge (the first days
of a new warehouse), so the check runs as a *warning* with a note saying so, and the run goes
on; with enough history it is critical again. Without any earlier day the band has nothing
to compare with (its ratio is NULL and it passes) and ``raw_day.article_history`` warns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipelines.gates.quality.suites import Check
from pipelines.warehouse.profile import DataProfile


@dataclass(frozen=True)
class NotApplicable:
    check: Check
    reason: str


def not_applicable_reason(check: Check, profile: DataProfile) -> str | None:
    """Why ``check`` cannot apply under ``profile``, or None when it applies."""
    absent = [part for part in check.needs if not profile.has(part)]
    if not absent:
        return None
    return f"not applicable: the source ({profile.source}) lacks {' and '.join(absent)}"


def history_note(history_days: int, min_days: int, window_days: int) -> str:
    return (
        f"not enough history: {history_days} earlier day(s) with data in the last {window_days} "
        f"(at least {min_days} needed), so this band check only warns"
    )


def resolve(
    checks: list[Check],
    profile: DataProfile,
    history_days: int | None = None,
    min_history_days: int = 0,
    window_days: int = 0,
) -> tuple[list[Check], list[NotApplicable]]:
    """(the checks to run, with band checks downgraded when history is short; the checks that
    cannot apply). ``history_days`` is None for a stage without band checks."""
    run: list[Check] = []
    skipped: list[NotApplicable] = []
    for check in checks:
        reason = not_applicable_reason(check, profile)
        if reason:
            skipped.append(NotApplicable(check, reason))
            continue
        if check.band and history_days is not None and history_days < min_history_days:
            note = history_note(history_days, min_history_days, window_days)
            check = replace(check, severity="warning", meta={**check.meta, "note": note})
        run.append(check)
    return run, skipped
