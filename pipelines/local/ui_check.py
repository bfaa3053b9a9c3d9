"""``make ui-check``: the pages on-call opens, in a real browser, on a real nightly run.

In its own home (``.newsrec-ui/``: its own embedded PostgreSQL, so the project's data is never
touched) it builds the demo's small world (seed, feature history), starts the local Airflow
services (api-server, scheduler, dag-processor; no login, a throwaway instance), triggers one
``newsrec_nightly`` run with params through Airflow's REST API, waits for the scheduler to
finish it, then opens the UIs in Debian's headless Chromium driven by Playwright
(:mod:`pipelines.local.ui_pages`): the run's grid and graph, the plugin's reports page, a
task's "newsrec report" extra link, the GE Data Docs, the Evidently drift report and the
nightly report. One screenshot per page goes to ``docs/img/``; one line per page says what
was asserted. The services and the database are stopped at the end, also on failure.

Not part of ``make test``: CI has no Chromium, and one real scheduler run takes minutes.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.core import config
from pipelines.core.errors import NewsrecError

DAG_ID = "newsrec_nightly"
HOME_MARKER = ".ui-check-home"  # only a folder holding this file is ever wiped
# The run's params: a short search, so the check spends its time on the UIs, not on training.
RUN_CONF = {"hpo_trials": 2, "hpo_minutes": 1.0, "force_retrain": True}


@dataclass
class TriggeredRun:
    base_url: str
    run_id: str
    day: date
    state: str
    tasks: dict[str, str]  # task_id -> state, from the REST API
    seconds: float


def latest_complete_day(now: datetime | None = None) -> date:
    """The day D of the newest data interval [D 02:00, D+1 02:00) that has ended at ``now``.

    Triggering exactly that interval means the scheduler, once the DAG is unpaused, finds its
    own catch-up run already there (same logical date) and creates no second one."""
    now = now or datetime.now(UTC)
    return (now - timedelta(hours=2)).date() - timedelta(days=1)


def use_own_home(home: Path) -> Path:
    """Point the settings at a fresh ``home`` (its previous embedded server stopped, wiped)."""
    from pipelines.local import airflow, postgres

    home = home.resolve()
    if home.exists() and not (home / HOME_MARKER).exists():
        raise NewsrecError(f"{home} exists and is not a ui-check home (no {HOME_MARKER}); pick another --home")
    os.environ["NEWSREC_HOME"] = str(home)
    os.environ.pop("NEWSREC_DATABASE_URL", None)  # always its own embedded server
    config.reset_caches()
    if home.exists():
        airflow.stop_services()  # left by a run that was killed before it could stop them
        postgres.stop_embedded()
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / HOME_MARKER).write_text("made by `newsrec ui-check`; wiped at its next run\n")
    return home


class AirflowApi:
    """The few calls of Airflow 3's REST API (``/api/v2``) that the check needs."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self.client = httpx.Client(base_url=base_url, timeout=30)
        # the simple auth manager in all-admins mode hands out a token without credentials
        token = self.client.get("/auth/token").raise_for_status().json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/api/v2{path}", **kwargs)
        if response.status_code >= 400:
            raise NewsrecError(f"Airflow API {method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def wait_for_dag(self, timeout_s: float) -> list[str]:
        """Wait until the dag-processor has parsed the DAG; return its task ids."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.client.get(f"/api/v2/dags/{DAG_ID}/tasks")
            if response.status_code == 200:
                return [t["task_id"] for t in response.json()["tasks"]]
            if time.monotonic() > deadline:
                raise NewsrecError(f"{DAG_ID} was not parsed within {timeout_s:.0f} s (dag-processor log)")
            time.sleep(2)

    def trigger(self, day: date, conf: dict[str, Any]) -> str:
        start = datetime(day.year, day.month, day.day, 2, tzinfo=UTC)
        body = {
            "dag_run_id": f"ui_check__{day.isoformat()}",
            "logical_date": start.isoformat(),  # the scheduler's own logical date of that interval
            "data_interval_start": start.isoformat(),
            "data_interval_end": (start + timedelta(days=1)).isoformat(),
            "conf": conf,
            "note": "triggered by `make ui-check`",
        }
        return self.call("POST", f"/dags/{DAG_ID}/dagRuns", json=body)["dag_run_id"]

    def wait_for_run(self, run_id: str, timeout_s: float, say: Callable[[str], None]) -> str:
        deadline = time.monotonic() + timeout_s
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            state = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            for task, task_state in self.task_states(run_id).items():
                if seen.get(task) != task_state and task_state not in ("none", "scheduled", "queued"):
                    say(f"    {task:<20} {task_state}")
                seen[task] = task_state
            if state in ("success", "failed"):
                return state
            time.sleep(5)
        raise NewsrecError(f"run {run_id} did not finish within {timeout_s:.0f} s")

    def task_states(self, run_id: str) -> dict[str, str]:
        answer = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {t["task_id"]: t["state"] or "none" for t in answer["task_instances"]}

    def extra_links(self, run_id: str, task_id: str) -> dict[str, str | None]:
        return self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/links")


def run_nightly(port: int, day: date, timeout_s: float, say: Callable[[str], None]) -> TriggeredRun:
    """With the services up: unpause the DAG, trigger D's run with :data:`RUN_CONF`, wait."""
    api = AirflowApi(f"http://localhost:{port}")
    tasks = api.wait_for_dag(timeout_s=180)
    say(f"{DAG_ID} parsed: {len(tasks)} tasks")
    run_id = api.trigger(day, RUN_CONF)
    api.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    say(f"triggered {run_id} (conf {RUN_CONF}); waiting for the scheduler")
    t0 = time.perf_counter()
    state = api.wait_for_run(run_id, timeout_s, say)
    api.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})
    return TriggeredRun(api.client.base_url.__str__().rstrip("/"), run_id, day, state, api.task_states(run_id),
                        time.perf_counter() - t0)  # fmt: skip


def _port_free(port: int, wait_s: float = 15) -> bool:
    import socket

    deadline = time.monotonic() + wait_s
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("localhost", port)) != 0:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def main(
    home: Path,
    port: int,
    out_dir: Path,
    run_timeout_s: float,
    chromium: Path | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """The whole check; returns the number of failed checks (0: every page as expected)."""
    from pipelines.core.config import params
    from pipelines.local import airflow, demo, postgres, ui_pages

    chromium = chromium or ui_pages.CHROMIUM
    missing = ui_pages.chromium_missing(chromium)
    if missing:
        raise NewsrecError(missing)
    t0 = time.perf_counter()
    home = use_own_home(home)
    if not _port_free(port):
        raise NewsrecError(f"port {port} is in use (another Airflow?); pick another with --port")
    day = latest_complete_day()
    cfg = params("demo")
    seconds: dict[str, float] = {}
    try:
        demo.build_world(day, int(cfg["days"]), int(cfg["users"]), int(cfg["articles_per_day"]))
        seconds["world"] = time.perf_counter() - t0
        say(f"\n==> Airflow services on port {port} (home {home / 'airflow'})")
        airflow.start_services(port, timeout_s=300, no_login=True)  # a loaded machine: slow api-server start
        say(f"\n==> {DAG_ID} for {day} through the scheduler")
        run = run_nightly(port, day, run_timeout_s, say)
        seconds["run"] = run.seconds
        failed = int(run.state != "success")
        say(f"{'PASS' if not failed else 'FAIL'}  {'run':<14} {run.run_id} {run.state} in {run.seconds:.0f} s")
        say("\n==> the pages, in headless Chromium")
        pages = ui_pages.Run(run.base_url, run.run_id, run.state, day.isoformat(), run.tasks)
        t_pages = time.perf_counter()
        results = ui_pages.check_pages(pages, out_dir, home / "ui-check-failed", chromium, say)
        seconds["pages"] = time.perf_counter() - t_pages
        failed += sum(not r.passed for r in results)
    finally:
        stopped = airflow.stop_services()
        postgres.stop_embedded()
        say(f"\n==> stopped {stopped} Airflow service(s) and the embedded database")
    parts = ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items())
    verdict = "all passed" if not failed else f"{failed} failed"
    say(f"ui-check: {verdict} in {time.perf_counter() - t0:.0f} s ({parts})")
    return failed
