"""Run a quality suite on day D, turn GE's answer into a :class:`GateResult`, store it in ops.

The result is data the DAG branches on (``passed``), people read (``render``) and dashboards
query (``ops.quality_results`` / ``ops.quality_checks``). Data Docs for every run of a day
land in one browsable site, ``$NEWSREC_HOME/reports/quality/<day>/index.html``: GE's
validation results of that day are kept next to it (``.results``) so the index lists them all.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.core.jsonable import finite, json_safe
from pipelines.core.runs import record_run
from pipelines.gates.quality import applicability, extracts, suites
from pipelines.gates.quality.suites import Severity
from pipelines.warehouse import profile as data_profile

log = logging.getLogger(__name__)

STAGES = ("raw", "features")


@dataclass
class CheckOutcome:
    """One expectation's verdict on day D, with a few failing rows or values as examples.

    ``success`` is None when the check is not applicable under the data profile (not run:
    neither passed nor failed); ``note`` says why, or that a band check lacked history."""

    name: str
    asset: str
    expectation: str
    column: str | None
    severity: Severity
    success: bool | None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    observed: Any = None
    expected: dict[str, Any] = field(default_factory=dict)
    examples: list[Any] = field(default_factory=list)
    error: str | None = None
    note: str | None = None

    @property
    def status(self) -> str:
        return "not applicable" if self.success is None else "passed" if self.success else "failed"

    def describe(self, examples: bool = True) -> str:
        """One line for the CLI and logs."""
        parts = [self.note] if self.note else []
        if self.error:
            parts.append(f"error: {self.error}")
        if self.unexpected_count is not None:
            of = f" of {self.element_count:,}" if self.element_count is not None else ""
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            parts.append(f"{self.unexpected_count:,}{of} rows unexpected{pct}")
        elif self.observed is not None:
            parts.append(f"observed {_short(self.observed)}")
        if self.expected:
            parts.append("expected " + ", ".join(f"{k}={_short(v)}" for k, v in self.expected.items()))
        if self.examples and examples:
            parts.append("e.g. " + "; ".join(_short(e) for e in self.examples))
        return f"{self.name}: " + "; ".join(parts)


@dataclass
class GateResult:
    """The verdict of one quality stage on one day. ``passed`` is False on any critical failure."""

    stage: str
    day: date
    suite_version: str
    passed: bool
    outcomes: list[CheckOutcome]
    report_path: Path | None
    pages: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)
    result_id: int | None = None
    run_id: int | None = None
    profile: dict[str, Any] = field(default_factory=dict)  # the data profile the suite ran under

    def failed(self, severity: Severity | None = None) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.success is False and (severity is None or o.severity == severity)]

    @property
    def not_applicable(self) -> list[CheckOutcome]:
        """Checks the data profile rules out (not run; neither passed nor failed)."""
        return [o for o in self.outcomes if o.success is None]

    @property
    def counts(self) -> dict[str, int]:
        """Checks run, succeeded, and failed per severity (not-applicable checks are not run)."""
        return {
            "checks": sum(o.success is not None for o in self.outcomes),
            "succeeded": sum(o.success is True for o in self.outcomes),
            "critical_failed": len(self.failed("critical")),
            "warning_failed": len(self.failed("warning")),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["day"] = self.day.isoformat()
        data["report_path"] = str(self.report_path) if self.report_path else None
        data["counts"] = self.counts
        return json_safe(data)

    def headline(self) -> str:
        """The verdict in one line: what failed (critical first, at most three) and where the
        report is; for error messages and alerts (``render`` has every failure and examples)."""
        c = self.counts
        failed = self.failed("critical") or self.failed()
        shown = "; ".join(o.describe(examples=False) for o in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        verdict = "PASSED" if self.passed else f"FAILED ({c['critical_failed']} critical check(s))"
        report = f"; report: {self.report_path}" if self.report_path else ""
        return f"quality {self.stage} {self.day}: {verdict}" + (f": {shown}{more}" if failed else "") + report

    def render(self) -> str:
        c = self.counts
        verdict = "PASSED" if self.passed else "FAILED"
        na = f"; {len(self.not_applicable)} not applicable" if self.not_applicable else ""
        lines = [
            f"quality {self.stage} {self.day}: {verdict} ({c['critical_failed']} critical and "
            f"{c['warning_failed']} warning check(s) failed of {c['checks']}{na}; suite {self.suite_version})"
        ]
        for severity in suites.SEVERITIES:
            for outcome in self.failed(severity):
                lines.append(f"  {severity.upper():<8} {outcome.describe()}")
        for outcome in self.not_applicable:
            lines.append(f"  {'N/A':<8} {outcome.name}: {outcome.note}")
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)


def check_raw(day: date) -> GateResult:
    """Validate the raw extract of ``day`` (warehouse events joined with users and articles)."""
    return _run_stage("raw", day)


def check_features(day: date) -> GateResult:
    """Validate the published feature partitions of ``day``."""
    return _run_stage("features", day)


def check_quality(day: date, stage: str = "all") -> list[GateResult]:
    """Run one stage ("raw", "features") or both in order ("all"); one result per stage."""
    if stage not in (*STAGES, "all"):
        raise NewsrecError(f"unknown quality stage {stage!r}; choose raw, features or all")
    return [_run_stage(s, day) for s in (STAGES if stage == "all" else (stage,))]


def _run_stage(stage: str, day: date) -> GateResult:

    p = params("quality")
    with record_run(f"quality_{stage}", day) as run:
        with db.transaction() as conn:
            profile = data_profile.load(conn)
        history = None
        if stage == "raw":
            frames, runtime = extracts.raw_frames(day, int(p["raw"]["article_history_days"]))
            history = int(frames["raw_day"]["history_days"].iloc[0])
        else:
            frames, runtime = extracts.feature_frames(day)
        checks, skipped = applicability.resolve(
            suites.stage_checks(stage, p),
            profile,
            history,
            int(p["raw"]["min_history_days"]),
            int(p["raw"]["article_history_days"]),
        )
        outcomes, index, pages = _validate(stage, day, frames, checks, runtime, int(p["examples"]))
        outcomes += [_not_applicable(s) for s in skipped]
        result = GateResult(
            stage=stage,
            day=day,
            suite_version=suites.SUITE_VERSIONS[stage],
            passed=not any(o.success is False and o.severity == "critical" for o in outcomes),
            outcomes=outcomes,
            report_path=index,
            pages=pages,
            params=p[stage] | {"examples": p["examples"]},
            runtime=runtime,
            run_id=run.run_id,
            profile=profile.to_dict(),
        )
        result.result_id = _store(result)
        run.details.update(passed=result.passed, result_id=result.result_id, **result.counts,
                           not_applicable=len(result.not_applicable), profile=profile.source)  # fmt: skip
    for outcome in result.failed():
        log.info("quality %s %s %s %s", stage, day, outcome.severity, outcome.describe())
    return result


def _validate(
    stage: str,
    day: date,
    frames: dict[str, Any],
    checks: list[suites.Check],
    runtime: dict[str, Any],
    examples: int,
) -> tuple[list[CheckOutcome], Path, dict[str, str]]:
    """Validate each frame against its suite (:mod:`pipelines.gates.quality.validation`, where
    Great Expectations runs and the Data Docs are built); return the outcomes, the site index
    and each asset's page."""
    from pipelines.gates.quality import validation

    results, index, pages = validation.validate(stage, day, frames, checks, runtime, examples)
    by_name = {c.name: c for c in checks}
    return [_outcome(r, by_name, examples) for r in results], index, pages


_EXPECTED_KEYS = ("value", "min_value", "max_value", "value_set", "mostly", "column_set")


def _outcome(r: Any, by_name: dict[str, suites.Check], examples: int) -> CheckOutcome:
    config = r.expectation_config
    name = (config.meta or {}).get("check", config.type)
    check = by_name.get(name)
    res = r.result or {}
    info = r.exception_info or {}
    error = info.get("exception_message") if info.get("raised_exception") else None
    found = res.get("partial_unexpected_index_list") or [{"value": v} for v in res.get("partial_unexpected_list") or []]
    expected = {k: config.kwargs[k] for k in _EXPECTED_KEYS if config.kwargs.get(k) is not None}
    if expected.get("mostly") == 1.0:
        expected.pop("mostly")
    return CheckOutcome(
        name=name,
        asset=check.asset if check else "",
        expectation=config.type,
        column=config.kwargs.get("column"),
        severity=str(getattr(config.severity, "value", config.severity) or "critical"),  # type: ignore[arg-type]
        success=bool(r.success),
        unexpected_count=res.get("unexpected_count"),
        unexpected_percent=res.get("unexpected_percent"),
        element_count=res.get("element_count"),
        observed=json_safe(res.get("observed_value")),
        expected=json_safe(expected),
        examples=json_safe(found[:examples]) if not r.success else [],
        error=error,
        note=(config.meta or {}).get("note"),
    )


def _not_applicable(skipped: applicability.NotApplicable) -> CheckOutcome:
    check = skipped.check
    return CheckOutcome(
        name=check.name,
        asset=check.asset,
        expectation=check.expectation,
        column=check.column,
        severity=check.severity,
        success=None,
        note=skipped.reason,
    )


def _store(result: GateResult) -> int:
    """Insert the result and one row per check; return the result id."""
    from psycopg2.extras import execute_values

    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            queries.load("quality_insert_result"),
            (
                result.run_id,
                result.day,
                result.stage,
                result.suite_version,
                result.passed,
                result.counts["checks"],
                result.counts["critical_failed"],
                result.counts["warning_failed"],
                json.dumps(json_safe(result.params)),
                json.dumps(json_safe(result.runtime)),
                str(result.report_path) if result.report_path else None,
                json.dumps(result.pages),
                len(result.not_applicable),
                json.dumps(json_safe(result.profile)),
            ),
        )
        result_id = cur.fetchone()[0]
        execute_values(
            cur,
            queries.load("quality_insert_checks"),
            [
                (
                    result_id,
                    o.name,
                    o.asset,
                    o.expectation,
                    o.column,
                    o.severity,
                    o.success,
                    o.unexpected_count,
                    finite(o.unexpected_percent),
                    json.dumps(o.observed),
                    json.dumps(o.expected),
                    json.dumps(o.examples),
                    o.error,
                    o.note,
                )
                for o in result.outcomes
            ],
        )
    return result_id


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
