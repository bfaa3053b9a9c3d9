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


def _reports_dir():
    from pipelines.core.config import get_settings

    return get_settings().reports_dir


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    root = _reports_dir()
    days = sorted(
        {p.name for kind in root.glob("*") if kind.is_dir() for p in kind.iterdir() if p.is_dir()}, reverse=True
    )
    items = []
    for day in days[:60]:
        links = [
            f'<a href="{PREFIX}/reports/{kind.name}/{day}/">{kind.name}</a>'
            for kind in sorted(root.glob("*"))
            if (kind / day).is_dir()
        ]
        items.append(f"<li><b>{day}</b>: {' | '.join(links)}</li>")
    return "<h1>newsrec reports</h1><ul>" + "".join(items) + "</ul>"


@app.get("/reports/{path:path}")
def report_file(path: str):
    root = _reports_dir().resolve()
    target = (root / path).resolve()
    if root not in target.parents and target != root:
        raise HTTPException(status_code=404)
    if target.is_dir():
        for name in ("report.html", "index.html"):
            if (target / name).exists():
                return FileResponse(target / name)
        files = sorted(p.relative_to(root) for p in target.rglob("*.html"))
        return HTMLResponse("".join(f'<p><a href="{PREFIX}/reports/{f}">{f}</a></p>' for f in files) or "no reports")
    if not target.exists():
        raise HTTPException(status_code=404, detail="no such report yet")
    return FileResponse(target)


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
