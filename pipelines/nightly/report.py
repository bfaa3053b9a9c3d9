"""The nightly report: what happened to day D, from the ``ops`` and ``serving`` records.

Written as Markdown (for the terminal and git-friendly diffs) and HTML (linked from the
Airflow UI by the newsrec plugin) under ``reports/nightly/<D>/``, with charts of the last
nights in ``charts/``. Links to the gates' reports are relative to that folder, so they work
from the plugin (which serves the reports folder at /newsrec/reports/) and from a file opened
locally; model versions link to the MLflow UI. Every number goes through ``fmt``.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import get_settings
from pipelines.model import registry
from pipelines.nightly import report_charts
from pipelines.warehouse import profile as data_profile

# Why label drift is shown but does not trigger retraining (the retrain checker's inputs).
LABEL_DRIFT_NOTE = (
    "Only feature drift feeds the retrain checker. Target (label) drift is shown for on-call but "
    "decides nothing: the logged clicks and dwell follow the lists the champion itself served "
    "(position bias and the closed loop), so they shift whenever the lists do; the checker judges "
    "the labels through the champion's NDCG on the newest day (decay) instead."
)


@dataclass(frozen=True)
class Link:
    text: str
    href: str  # relative to the report's folder, or the MLflow UI's URL


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


def _kind(header: str) -> str:
    """How a column's numbers are printed: seconds, shares or metrics."""
    if header == "seconds" or header.endswith(" s"):
        return "seconds"
    if "share" in header or header in ("CTR", "coverage"):
        return "share"
    return "metric"


def fmt(value: Any, kind: str = "metric") -> str:
    """The one way a report prints a value: metrics to 4 significant digits, seconds to one
    decimal, shares as percentages; links print their text (the renderers add the target)."""
    if value is None:
        return ""
    if isinstance(value, Link):
        return value.text
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value.tzinfo else f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, (float, Decimal)):
        number = float(value)
        if not math.isfinite(number):
            return str(number)
        if kind == "seconds":
            return f"{number:.1f}"
        if kind == "share":
            return f"{number * 100:.1f}%" if abs(number) >= 0.001 or number == 0 else f"{number * 100:.2g}%"
        if number == 0:
            return "0"
        rounded = float(f"{number:.4g}")  # 4 significant digits, printed without an exponent
        return f"{rounded:.{max(3 - math.floor(math.log10(abs(rounded))), 0)}f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _report_link(path: str | None, folder: Path, text: str) -> Link | str:
    """A gate's HTML report as a link relative to the nightly report's folder (plain text when
    the file is gone or lives outside the reports folder)."""
    if not path:
        return ""
    target, root = Path(path).resolve(), get_settings().reports_dir.resolve()
    if not target.is_file() or root not in target.parents:
        return f"{target.name} ({'outside the reports folder' if target.is_file() else 'missing'})"
    return Link(text, Path(os.path.relpath(target, folder.resolve())).as_posix())


def _version_link(version: str | None) -> Link | str:
    return Link(str(version), registry.ui_link(str(version))) if version else ""


def _query(cur, name: str, params: tuple) -> list[tuple]:
    """The rows of the named query ``name`` (sql/queries/<name>.sql)."""
    cur.execute(queries.load(name), params)
    return cur.fetchall()


def _folder(day: date) -> Path:
    return get_settings().reports_dir / "nightly" / day.isoformat()


def collect(day: date) -> list[Section]:
    sections: list[Section] = []
    folder = _folder(day)
    with db.transaction() as conn, conn.cursor() as cur:
        # one line: which parts the source has (stages switch off what it lacks)
        sections.append(Section("Data profile", ["source: what it lacks"], [[data_profile.load(conn).summary()]]))
        runs = _query(cur, "report_stage_runs", (day,))
        sections.append(Section("Stages (latest run of each)", ["stage", "status", "seconds", "error"],
                                [list(r) for r in runs]))  # fmt: skip
        quality = _query(cur, "report_quality", (day,))
        failing = _query(cur, "report_failed_checks", (day,))
        note = "; ".join(f"{s}/{sev}: {name} ({n} rows)" for s, sev, name, n in failing)
        sections.append(Section("Quality gate", ["stage", "passed", "checks", "critical failed", "warnings",
                                                 "not applicable", "report"],
                                [[*r[:6], _report_link(r[6], folder, "Data Docs")] for r in quality],
                                note and f"Failed checks: {note}"))  # fmt: skip
        drift = _query(cur, "report_drift", (day,))
        sections.append(Section("Drift", ["kind", "drifted", "share", "drifted cols", "cols", "which", "report"],
                                [[*r[:5], ", ".join(r[5] or []), _report_link(r[6], folder, "Evidently")]
                                 for r in drift],
                                LABEL_DRIFT_NOTE if any(r[0] == "target" for r in drift) else ""))  # fmt: skip
        retrain = _query(cur, "report_retrain", (day,))
        sections.append(Section("Retrain checker", ["retrain", "mode", "champion", "reasons", "evidence"],
                                [[r[0], r[1], r[2], "; ".join(r[3]), _evidence(r[4])] for r in retrain]))  # fmt: skip
        training = _query(cur, "report_training", (day,))
        sections.append(Section("Training", ["status", "mode", "objective", "warm from", "version", "reused",
                                             "promoted", "NDCG@10", "seconds"],
                                [[*r[:4], _version_link(r[4]), *r[5:9]] for r in training],
                                "; ".join(f"objective: {r[9]}" for r in training if r[9])))  # fmt: skip
        models = _query(cur, "report_model_decisions", (day,))
        sections.append(Section("Model decisions", ["kind", "challenger", "champion", "promoted", "reasons",
                                                    "challenger NDCG@10 (logged)",
                                                    "challenger vs champion: difference [lower bound]"],
                                [[r[0], _version_link(r[1]), r[2], r[3], "; ".join(r[4]), r[5], _paired(r[6])]
                                 for r in models]))  # fmt: skip
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
    return f"[{fmt(float(ci[0]))}, {fmt(float(ci[1]))}]" if ci else ""


def _paired(comparison: dict[str, Any] | None) -> str:
    """The gate's paired comparison with the champion in one cell: the metric it decided on (the
    unbiased one where positions are known), both models' values, the difference and its bound."""
    if not comparison:
        return ""
    c = comparison
    return (f"{c['metric']} {fmt(float(c['challenger']))} vs {fmt(float(c['champion']))}: "
            f"{fmt(float(c['difference']))} [>= {fmt(float(c['lower']))}] ({c['estimator']})")  # fmt: skip


def _evidence(evidence: dict[str, Any] | None) -> str:
    """The checker's numbers in one short cell (drift share, champion age, decay)."""
    parts = []
    for key, label, kind in (("drift_share", "drift share", "share"),
                             ("champion_age_days", "champion age (days)", "metric"),
                             ("champion_ndcg_at_registration", "champion NDCG@10 then", "metric"),
                             ("champion_ndcg_today", "champion NDCG@10 now", "metric")):  # fmt: skip
        value = (evidence or {}).get(key)
        if value is not None:
            parts.append(f"{label} {fmt(value, kind)}")
    return ", ".join(parts)


def _neighbours(day: date) -> tuple[date | None, date | None]:
    """The nearest earlier and later nights that have a report."""
    root = get_settings().reports_dir / "nightly"
    days = []
    for p in root.glob("*/report.html"):
        try:
            days.append(date.fromisoformat(p.parent.name))
        except ValueError:
            continue
    return max((d for d in days if d < day), default=None), min((d for d in days if d > day), default=None)


def _nav(day: date) -> list[Link]:
    before, after = _neighbours(day)
    links = [Link(f"← {before}", f"../{before}/report.html")] if before else []
    return links + ([Link(f"{after} →", f"../{after}/report.html")] if after else [])


def _md_cell(value: Any, header: str) -> str:
    text = fmt(value, _kind(header)).replace("|", "/").replace("\n", " ")
    return f"[{text}]({value.href})" if isinstance(value, Link) else text


def to_markdown(day: date, sections: list[Section], charts: list[report_charts.Chart] = ()) -> str:
    lines = [f"# newsrec nightly report, {day}", ""]
    nav = _nav(day)
    if nav:
        lines += [" · ".join(f"[{n.text}]({n.href.replace('.html', '.md')})" for n in nav), ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        if not s.rows:
            lines += ["(nothing recorded)", ""]
            continue
        lines.append("| " + " | ".join(s.headers) + " |")
        lines.append("|" + "".join("---:|" if _numeric_column(s, i) else "---|" for i in range(len(s.headers))))
        for row in s.rows:
            lines.append("| " + " | ".join(_md_cell(v, h) for v, h in zip(row, s.headers, strict=True)) + " |")
        if s.note:
            lines += ["", s.note]
        lines.append("")
    if charts:
        lines += [f"## Last {report_charts.NIGHTS} nights", ""]
        for c in charts:
            shown = f"![{c.title}](charts/{c.path.name})" if c.path else f"{c.title}: (nothing recorded)"
            lines += [shown, "", c.note, ""]
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _numeric_column(s: Section, i: int) -> bool:
    values = [r[i] for r in s.rows if r[i] is not None]
    return bool(values) and all(_is_number(v) for v in values)


STYLE = """
:root{--fg:#1a202c;--muted:#5f6b7a;--line:#e2e8f0;--bg:#f7f8fa;--card:#fff;--link:#017cee}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:var(--card);border-bottom:1px solid var(--line);padding:12px 24px;display:flex;gap:16px;
align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-weight:600}
header nav{display:flex;gap:12px;margin-left:auto}
main{padding:16px 24px;max-width:1400px}
section{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:0 0 16px;
overflow-x:auto}
h2{font-size:15px;margin:0 0 8px;font-weight:600}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 10px;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600;background:#fafbfc;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:hover td{background:#f5f9ff}
p.note,p.empty,figcaption{color:var(--muted);font-size:13px;margin:8px 0 0}
figure{margin:0 0 16px}figure img{width:100%;max-width:900px;height:auto}
"""


def _html_cell(value: Any, header: str) -> str:
    text = html.escape(fmt(value, _kind(header)))
    if isinstance(value, Link):
        text = f'<a href="{html.escape(value.href)}">{text}</a>'
    return f'<td class="num">{text}</td>' if _is_number(value) else f"<td>{text}</td>"


def to_html(day: date, sections: list[Section], charts: list[report_charts.Chart] = ()) -> str:
    nav = "".join(f'<a href="{html.escape(n.href)}">{html.escape(n.text)}</a>' for n in _nav(day))
    parts = [f"<!doctype html><html lang='en'><meta charset='utf-8'><title>newsrec nightly {day}</title>",
             f"<style>{STYLE}</style>",
             f"<header><h1>newsrec nightly report, {day}</h1><a href='report.md'>Markdown</a>"
             f"<nav>{nav}</nav></header><main>"]  # fmt: skip
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        if not s.rows:
            parts.append("<p class='empty'>(nothing recorded)</p></section>")
            continue
        numeric = [_numeric_column(s, i) for i in range(len(s.headers))]
        parts.append("<table><tr>" + "".join(f"<th{' class=num' if n else ''}>{html.escape(h)}</th>"
                                             for h, n in zip(s.headers, numeric, strict=True)) + "</tr>")  # fmt: skip
        for row in s.rows:
            parts.append("<tr>" + "".join(_html_cell(v, h) for v, h in zip(row, s.headers, strict=True)) + "</tr>")
        parts.append("</table>")
        if s.note:
            parts.append(f"<p class='note'>{html.escape(s.note)}</p>")
        parts.append("</section>")
    if charts:
        parts.append(f"<section><h2>Last {report_charts.NIGHTS} nights</h2>")
        for c in charts:
            shown = (f"<img src='charts/{c.path.name}' alt='{html.escape(c.title)}'>" if c.path
                     else f"<p class='empty'>{html.escape(c.title)}: (nothing recorded)</p>")  # fmt: skip
            parts.append(f"<figure>{shown}<figcaption>{html.escape(c.note)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</main></html>")
    return "\n".join(parts)


def write_nightly_report(day: date) -> Path:
    sections = collect(day)
    folder = _folder(day)
    folder.mkdir(parents=True, exist_ok=True)
    with db.transaction() as conn, conn.cursor() as cur:
        charts = report_charts.collect(cur, day)
    report_charts.write(charts, folder, day)
    (folder / "report.md").write_text(to_markdown(day, sections, charts))
    (folder / "report.html").write_text(to_html(day, sections, charts))
    return folder / "report.md"
