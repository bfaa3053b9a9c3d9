"""Airflow plugin: makes the Airflow UI the first place on-call looks.

- a "newsrec reports" entry in the UI's navigation, served by a small FastAPI app inside the
  Airflow api-server at /newsrec/: the nightly report, GE Data Docs and Evidently HTML per day;
- an extra link on every task of the newsrec DAGs ("newsrec report") that opens the report
  of that task's logical date (data docs for the quality gate, the drift report for the drift
  check, the version that day's training registered in the MLflow UI, the nightly report otherwise).
The project is imported only when a page is requested, never when Airflow loads plugins.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

PREFIX = "/newsrec"
TASK_REPORTS = {"raw_gate": "quality", "quality_gate": "quality", "drift_check": "drift"}

app = FastAPI(title="newsrec reports", docs_url=None, redoc_url=None)

KINDS = ("nightly", "quality", "drift")  # the index's columns first; other kinds follow
MAX_DAYS = 60

# Close to the Airflow 3 UI: its system font stack, white cards on a light grey, light borders,
# Airflow's blue for links.
STYLE = """
:root{--fg:#1a202c;--muted:#5f6b7a;--line:#e2e8f0;--bg:#f7f8fa;--card:#fff;--link:#017cee}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:var(--card);border-bottom:1px solid var(--line);padding:12px 24px}
header h1{font-size:18px;margin:0;font-weight:600}
main{padding:16px 24px}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:12px 16px;display:inline-block;
min-width:420px}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:6px 14px;text-align:left}
thead th{color:var(--muted);font-weight:600}
tbody th{font-weight:500;font-variant-numeric:tabular-nums;white-space:nowrap}
td.none{color:#a0aec0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:hover td,tr:hover th{background:#f5f9ff}
p.muted{color:var(--muted)}
"""


def _page(title: str, body: str, back: bool = False) -> str:
    from html import escape

    crumb = f'<p><a href="{PREFIX}/">&larr; all reports</a></p>' if back else ""
    return (
        f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style><header><h1>{escape(title)}</h1></header><main>{crumb}"
        f"<div class='card'>{body}</div></main></html>"
    )


def _reports_dir():
    from pipelines.core.config import get_settings

    return get_settings().reports_dir


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    """A table of days (newest first) by report kind; a cell links to that day's folder."""
    root = _reports_dir()
    kinds = [*KINDS, *sorted(p.name for p in root.glob("*") if p.is_dir() and p.name not in KINDS)]
    days = sorted({p.name for k in kinds if (root / k).is_dir() for p in (root / k).iterdir() if p.is_dir()},
                  reverse=True)  # fmt: skip
    head = "".join(f"<th>{k}</th>" for k in kinds)
    rows = []
    for day in days[:MAX_DAYS]:
        cells = "".join(
            f'<td><a href="{PREFIX}/reports/{k}/{day}/">{k}</a></td>' if (root / k / day).is_dir()
            else '<td class="none">–</td>'
            for k in kinds
        )  # fmt: skip
        rows.append(f'<tr><th scope="row">{day}</th>{cells}</tr>')
    body = (f"<table><thead><tr><th>day</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            if rows else "<p class='muted'>no reports yet</p>")  # fmt: skip
    more = f"<p class='muted'>the newest {MAX_DAYS} of {len(days)} days</p>" if len(days) > MAX_DAYS else ""
    return _page("newsrec reports", body + more)


@app.get("/reports/{path:path}")
def report_file(path: str):
    root = _reports_dir().resolve()
    target = (root / path).resolve()
    if root not in target.parents and target != root:
        raise HTTPException(status_code=404)
    if target.is_dir():
        if path and not path.endswith("/"):  # the report's relative links need the folder's URL
            return RedirectResponse(f"{PREFIX}/reports/{path}/")
        for name in ("report.html", "index.html"):
            if (target / name).exists():
                return FileResponse(target / name)
        return HTMLResponse(_listing(root, target))
    if not target.exists():
        raise HTTPException(status_code=404, detail="no such report yet")
    return FileResponse(target)


def _listing(root, folder) -> str:
    """The HTML reports under a folder that has no report of its own (the drift checks' runs)."""
    from datetime import UTC, datetime

    rows = []
    for p in sorted(folder.rglob("*.html")):
        stat = p.stat()
        when = datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
        rel = p.relative_to(root).as_posix()
        rows.append(f'<tr><td><a href="{PREFIX}/reports/{rel}">{p.relative_to(folder).as_posix()}</a></td>'
                    f'<td class="num">{stat.st_size / 1e6:.1f} MB</td><td>{when}</td></tr>')  # fmt: skip
    title = f"newsrec reports: {folder.relative_to(root).as_posix()}"
    if not rows:
        return _page(title, "<p class='muted'>no reports</p>", back=True)
    head = "<thead><tr><th>report</th><th>size</th><th>written</th></tr></thead>"
    return _page(title, f"<table>{head}<tbody>{''.join(rows)}</tbody></table>", back=True)


@app.get("/runs/{dag_id}/{run_id}/{task_id}")
def task_report(dag_id: str, run_id: str, task_id: str):
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
        if run is None or run.data_interval_start is None:
            raise HTTPException(status_code=404, detail="unknown run")
        day = run.data_interval_start.date().isoformat()
    if task_id == "train":
        from datetime import date

        from pipelines.core import runs
        from pipelines.model import registry

        trained = runs.latest_success("train", date.fromisoformat(day))  # the version this run trained
        if trained and trained.get("version"):
            return RedirectResponse(registry.ui_link(trained["version"]))
    kind = TASK_REPORTS.get(task_id, "nightly")
    return RedirectResponse(f"{PREFIX}/reports/{kind}/{day}/")


class NewsrecReportLink(BaseOperatorLink):
    name = "newsrec report"

    def get_link(self, operator, *, ti_key) -> str:
        if not ti_key.dag_id.startswith("newsrec"):
            return ""
        return f"{PREFIX}/runs/{ti_key.dag_id}/{ti_key.run_id}/{ti_key.task_id}"


class NewsrecPlugin(AirflowPlugin):
    name = "newsrec"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "newsrec reports"}]
    external_views = [{"name": "newsrec reports", "href": f"{PREFIX}/", "destination": "nav", "url_route": "newsrec"}]
    global_operator_extra_links = [NewsrecReportLink()]
