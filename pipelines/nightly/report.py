"""The nightly report: what happened to day D, from the ``ops`` and ``serving`` records.

Written as Markdown (for the terminal and git-friendly diffs) and HTML (linked from the
Airflow UI by the newsrec plugin) under ``reports/nightly/<D>/``.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import get_settings

# Why label drift is shown but does not trigger retraining (the retrain checker's inputs).
LABEL_DRIFT_NOTE = (
    "Only feature drift feeds the retrain checker. Target (label) drift is shown for on-call but "
    "decides nothing: the logged clicks and dwell follow the lists the champion itself served "
    "(position bias and the closed loop), so they shift whenever the lists do; the checker judges "
    "the labels through the champion's NDCG on the newest day (decay) instead."
)


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


def _query(cur, name: str, params: tuple) -> list[tuple]:
    """The rows of the named query ``name`` (sql/queries/<name>.sql)."""
    cur.execute(queries.load(name), params)
    return cur.fetchall()


def collect(day: date) -> list[Section]:
    sections: list[Section] = []
    with db.transaction() as conn, conn.cursor() as cur:
        runs = _query(cur, "report_stage_runs", (day,))
        sections.append(Section("Stages (latest run of each)", ["stage", "status", "seconds", "error"],
                                [list(r) for r in runs]))  # fmt: skip
        quality = _query(cur, "report_quality", (day,))
        failing = _query(cur, "report_failed_checks", (day,))
        note = "; ".join(f"{s}/{sev}: {name} ({n} rows)" for s, sev, name, n in failing)
        sections.append(Section("Quality gate", ["stage", "passed", "checks", "critical failed", "warnings",
                                                 "not applicable", "report"],
                                [list(r) for r in quality], note and f"Failed checks: {note}"))  # fmt: skip
        drift = _query(cur, "report_drift", (day,))
        sections.append(Section("Drift", ["kind", "drifted", "share", "drifted cols", "cols", "which", "report"],
                                [[*r[:5], ", ".join(r[5] or []), r[6]] for r in drift],
                                LABEL_DRIFT_NOTE if any(r[0] == "target" for r in drift) else ""))  # fmt: skip
        retrain = _query(cur, "report_retrain", (day,))
        sections.append(Section("Retrain checker", ["retrain", "mode", "champion", "reasons", "evidence"],
                                [[r[0], r[1], r[2], "; ".join(r[3]), _evidence(r[4])] for r in retrain]))  # fmt: skip
        training = _query(cur, "report_training", (day,))
        sections.append(Section("Training", ["status", "mode", "objective", "warm from", "version", "reused",
                                             "promoted", "NDCG@10", "seconds"],
                                [list(r) for r in training]))  # fmt: skip
        models = _query(cur, "report_model_decisions", (day,))
        sections.append(Section("Model decisions", ["kind", "challenger", "champion", "promoted", "reasons",
                                                    "challenger NDCG@10", "champion NDCG@10"],
                                [[*r[:4], "; ".join(r[4]), *r[5:]] for r in models]))  # fmt: skip
        sections += _experiment_sections(cur, day)
        batches = _query(cur, "report_batches", (day,))
        sections.append(Section("Serving batches", ["batch", "model", "status", "users", "rows", "created", "live"],
                                [list(r) for r in batches]))  # fmt: skip
        alerts = _query(cur, "report_alerts", (day,))
        sections.append(Section("Alerts", ["raised", "source", "task", "error"], [list(r) for r in alerts]))
    return sections


def _experiment_sections(cur, day: date) -> list[Section]:
    """The business metric of D per arm (all regions) and the promoter/demoter's decisions."""
    metrics = _query(cur, "report_business_metrics", (day,))
    decisions = _query(cur, "report_experiment_decisions", (day,))
    return [
        Section("Business metric (recommended impressions of D)", ["arm", "in cohort", "model", "active users",
                "dwell/user s", "CTR", "coverage", "diversity", "experiment"], [list(r) for r in metrics],
                "Active users: shown their list at least once on D; dwell from reads of recommended impressions."),
        Section("Experiment decisions", ["experiment", "arm", "model", "decision", "share before", "share after",
                "arm dwell/user s", "champion dwell/user s", "diff", "CI", "days", "users (arm)",
                "users (champion)", "reasons"],
                [[*r[:9], _ci(r[9]), *r[10:13], "; ".join(r[13])] for r in decisions]),
    ]  # fmt: skip


def _ci(ci: list[float] | None) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def _evidence(evidence: dict[str, Any] | None) -> str:
    """The checker's numbers in one short cell (drift share, champion age, decay)."""
    parts = []
    for key, label in (("drift_share", "drift share"), ("champion_age_days", "champion age (days)"),
                       ("champion_ndcg_at_registration", "champion NDCG@10 then"),
                       ("champion_ndcg_today", "champion NDCG@10 now")):  # fmt: skip
        value = (evidence or {}).get(key)
        if value is not None:
            parts.append(f"{label} {value:.4g}" if isinstance(value, float) else f"{label} {value}")
    return ", ".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def to_markdown(day: date, sections: list[Section]) -> str:
    lines = [f"# newsrec nightly report, {day}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        if not s.rows:
            lines += ["(nothing recorded)", ""]
            continue
        lines.append("| " + " | ".join(s.headers) + " |")
        lines.append("|" + "---|" * len(s.headers))
        for row in s.rows:
            lines.append("| " + " | ".join(_cell(v).replace("|", "/").replace("\n", " ") for v in row) + " |")
        if s.note:
            lines += ["", s.note]
        lines.append("")
    return "\n".join(lines)


def to_html(day: date, sections: list[Section]) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>newsrec {day}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>",
             f"<h1>newsrec nightly report, {day}</h1>"]  # fmt: skip
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if not s.rows:
            parts.append("<p>(nothing recorded)</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in s.headers) + "</tr>")
        for row in s.rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
        if s.note:
            parts.append(f"<p>{html.escape(s.note)}</p>")
    return "\n".join(parts)


def write_nightly_report(day: date) -> Path:
    sections = collect(day)
    folder = get_settings().reports_dir / "nightly" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text(to_markdown(day, sections))
    (folder / "report.html").write_text(to_html(day, sections))
    return folder / "report.md"
