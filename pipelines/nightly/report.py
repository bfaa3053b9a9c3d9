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
from pipelines.core.config import get_settings


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


def _query(cur, sql: str, params: tuple) -> list[tuple]:
    cur.execute(sql, params)
    return cur.fetchall()


def collect(day: date) -> list[Section]:
    sections: list[Section] = []
    with db.transaction() as conn, conn.cursor() as cur:
        runs = _query(
            cur,
            "SELECT DISTINCT ON (stage) stage, status, "
            "round(extract(epoch FROM finished_at - started_at)::numeric, 1), details->>'error' "
            "FROM ops.runs WHERE logical_date = %s ORDER BY stage, run_id DESC",
            (day,),
        )
        sections.append(Section("Stages (latest run of each)", ["stage", "status", "seconds", "error"],
                                [list(r) for r in runs]))  # fmt: skip
        quality = _query(
            cur,
            "SELECT stage, passed, n_checks, n_critical_failed, n_warning_failed, report_path "
            "FROM ops.quality_latest WHERE logical_date = %s ORDER BY stage",
            (day,),
        )
        failing = _query(
            cur,
            "SELECT q.stage, c.severity, c.check_name, c.unexpected_count FROM ops.quality_checks c "
            "JOIN ops.quality_latest q USING (result_id) WHERE q.logical_date = %s AND NOT c.success "
            "ORDER BY c.severity, c.check_name",
            (day,),
        )
        note = "; ".join(f"{s}/{sev}: {name} ({n} rows)" for s, sev, name, n in failing)
        sections.append(Section("Quality gate", ["stage", "passed", "checks", "critical failed", "warnings", "report"],
                                [list(r) for r in quality], note and f"Failed checks: {note}"))  # fmt: skip
        drift = _query(
            cur,
            "SELECT kind, drifted, round(drift_share::numeric, 3), n_drifted, n_columns, "
            "verdict->'drifted_columns', report_path FROM ops.drift_latest WHERE logical_date = %s ORDER BY kind",
            (day,),
        )
        sections.append(Section("Drift", ["kind", "drifted", "share", "drifted cols", "cols", "which", "report"],
                                [[*r[:5], ", ".join(r[5] or []), r[6]] for r in drift]))  # fmt: skip
        retrain = _query(
            cur,
            "SELECT retrain, mode, champion_version, reasons, evidence FROM ops.retrain_decisions "
            "WHERE logical_date = %s ORDER BY decision_id DESC LIMIT 1",
            (day,),
        )
        sections.append(Section("Retrain checker", ["retrain", "mode", "champion", "reasons", "evidence"],
                                [[r[0], r[1], r[2], "; ".join(r[3]), _evidence(r[4])] for r in retrain]))  # fmt: skip
        training = _query(
            cur,
            "SELECT status, details->>'mode', details->>'objective', details->>'warm_from', details->>'version', "
            "details->>'reused', details->>'promoted', details->>'ndcg', "
            "round(extract(epoch FROM finished_at - started_at)::numeric, 1) "
            "FROM ops.runs WHERE logical_date = %s AND stage = 'train' ORDER BY run_id DESC LIMIT 1",
            (day,),
        )
        sections.append(Section("Training", ["status", "mode", "objective", "warm from", "version", "reused",
                                             "promoted", "NDCG@10", "seconds"],
                                [list(r) for r in training]))  # fmt: skip
        models = _query(
            cur,
            "SELECT kind, challenger_version, champion_version, promoted, reasons, "
            "evidence->>'challenger_ndcg@10', evidence->>'champion_ndcg@10' FROM ops.model_decisions "
            "WHERE logical_date = %s ORDER BY decision_id",
            (day,),
        )
        sections.append(Section("Model decisions", ["kind", "challenger", "champion", "promoted", "reasons",
                                                    "challenger NDCG@10", "champion NDCG@10"],
                                [[*r[:4], "; ".join(r[4]), *r[5:]] for r in models]))  # fmt: skip
        sections += _experiment_sections(cur, day)
        batches = _query(
            cur,
            "SELECT b.batch_id, b.model_version, b.status, b.n_users, b.n_rows, b.created_at, "
            "(l.batch_id = b.batch_id) FROM serving.batches b CROSS JOIN serving.live l "
            "WHERE b.data_date = %s ORDER BY b.batch_id",
            (day,),
        )
        sections.append(Section("Serving batches", ["batch", "model", "status", "users", "rows", "created", "live"],
                                [list(r) for r in batches]))  # fmt: skip
        alerts = _query(
            cur,
            "SELECT raised_at, source, task, error FROM ops.alerts WHERE logical_date = %s ORDER BY alert_id",
            (day,),
        )
        sections.append(Section("Alerts", ["raised", "source", "task", "error"], [list(r) for r in alerts]))
    return sections


def _experiment_sections(cur, day: date) -> list[Section]:
    """The business metric of D per arm (all regions) and the promoter/demoter's decisions."""
    metrics = _query(
        cur,
        "SELECT m.arm, m.in_cohort, string_agg(DISTINCT m.model_version, ', '), sum(m.active_users), "
        "round((sum(m.dwell_s) / nullif(sum(m.active_users), 0))::numeric, 2), "
        "round((sum(m.reads)::float8 / nullif(sum(m.impressions), 0))::numeric, 4), "
        "round(max(m.coverage)::numeric, 3), "
        "round((sum(m.diversity * m.active_users) / nullif(sum(m.active_users), 0))::numeric, 2), e.name "
        "FROM ops.business_metrics m LEFT JOIN ops.experiments e USING (experiment_id) "
        "WHERE m.logical_date = %s GROUP BY m.arm, m.in_cohort, e.name ORDER BY m.in_cohort DESC, m.arm",
        (day,),
    )
    decisions = _query(
        cur,
        "SELECT e.name, d.arm, d.model_version, d.decision, d.share_before, d.share_after, "
        "round((d.evidence->>'mean_challenger')::numeric, 2), round((d.evidence->>'mean_champion')::numeric, 2), "
        "round((d.evidence->>'diff')::numeric, 2), d.evidence->'ci', d.evidence->>'days', "
        "d.evidence->>'n_challenger', d.evidence->>'n_champion', d.reasons "
        "FROM ops.experiment_decisions d JOIN ops.experiments e USING (experiment_id) "
        "WHERE d.logical_date = %s ORDER BY d.decision_id",
        (day,),
    )
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
