"""The browser half of ``make ui-check``: each page on-call opens, asserted and photographed.

Debian's Chromium (``/usr/bin/chromium``) driven by Playwright for Python; Playwright's own
browser download is never used. The assertions look for what a page is for (the run and its
tasks with their states, the day's report links, the report titles and sections), not for
styling, so a restyled page still passes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium"
# The machine's network is closed: without these Chromium keeps trying its background services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# GE's Data Docs load bootstrap and jQuery from CDNs, which a closed network refuses: the browser
# gets Debian's copies (libjs-bootstrap4, libjs-jquery) when installed; any other request that
# leaves the machine is refused at once, so no page waits on a dead connection.
DEBIAN_JS = Path("/usr/share/javascript")
LOCAL_COPIES = {
    re.compile(r"/bootstrap/4\.[\d.]+/css/bootstrap\.min\.css$"): DEBIAN_JS / "bootstrap4/css/bootstrap.min.css",
    re.compile(r"/bootstrap/4\.[\d.]+/js/bootstrap\.min\.js$"): DEBIAN_JS / "bootstrap4/js/bootstrap.bundle.min.js",
    re.compile(r"/jquery-3\.[\d.]+\.min\.js$"): DEBIAN_JS / "jquery/jquery.min.js",
}
OUTSIDE = re.compile(r"^https?://(?!(localhost|127\.0\.0\.1)[:/])")
VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 60_000


def chromium_missing(path: Path = CHROMIUM) -> str | None:
    """One line saying how to install Chromium when ``path`` is not an executable, else None."""
    if path.is_file() and os.access(path, os.X_OK):
        return None
    return f"ui-check needs Debian's Chromium at {path}: install it with `{INSTALL_HINT}`"


def state_label(state: str | None) -> str:
    """The label Airflow's UI shows for a task state (``upstream_failed`` -> ``Upstream Failed``)."""
    if not state or state == "none":
        return "No Status"
    return state.replace("_", " ").title()


@dataclass
class PageResult:
    name: str
    asserted: str
    passed: bool
    screenshot: Path | None
    error: str = ""

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        where = f" -> {self.screenshot}" if self.screenshot else ""
        why = f" ({self.error})" if self.error else ""
        return f"{verdict}  {self.name:<14} {self.asserted}{why}{where}"


@dataclass
class Run:
    """What the pages are checked against: the run as Airflow's REST API reported it."""

    base_url: str
    run_id: str
    state: str
    day: str
    tasks: dict[str, str]  # task_id -> state


@contextmanager
def browser(executable: Path = CHROMIUM) -> Iterator[Any]:
    """A headless Chromium context with a fresh profile (removed afterwards)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # a loaded machine's API answers in seconds, not ms
    profile = tempfile.mkdtemp(prefix="newsrec-ui-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=str(executable), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
            )
            context.set_default_timeout(TIMEOUT_MS)
            context.route(OUTSIDE, _outside_request)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _outside_request(route: Any) -> None:
    for pattern, local in LOCAL_COPIES.items():
        if pattern.search(route.request.url) and local.exists():
            route.fulfill(path=str(local))
            return
    route.abort()


class Pages:
    """One method per page; each navigates, asserts (AssertionError on a miss) and returns
    ``(what was asserted, the page to photograph, full_page)``."""

    def __init__(self, context: Any, run: Run) -> None:
        self.context = context
        self.run = run
        self.page = context.new_page()

    def _goto(self, path: str, height: int = VIEWPORT["height"]) -> Any:
        self.page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        url = path if path.startswith("http") else f"{self.run.base_url}{path}"
        response = self.page.goto(url, wait_until="networkidle")
        assert response is not None and response.ok, f"{url} answered {response and response.status}"
        return self.page

    def _run_page(self, height: int = VIEWPORT["height"]) -> Any:
        from playwright.sync_api import expect

        page = self._goto(f"/dags/newsrec_nightly/runs/{self.run.run_id}", height)
        assert "/login" not in page.url, f"redirected to the login page ({page.url})"
        header = page.get_by_test_id("header-card")
        expect(header).to_contain_text(self.run.run_id)
        expect(header).to_contain_text(state_label(self.run.state), ignore_case=True)
        for task in self.run.tasks:
            expect(page.get_by_test_id(f"task-{task}")).to_be_visible()  # the grid's task names
            expect(page.get_by_test_id(f"grid-{self.run.run_id}-{task}")).to_be_attached()  # its cells
        return page

    def grid(self) -> tuple[str, Any, bool]:
        from playwright.sync_api import expect

        page = self._run_page(height=1250)  # tall enough for the table's 14 rows
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(len(self.run.tasks))
        for task, state in self.run.tasks.items():
            row = rows.filter(has=page.get_by_role("link", name=task, exact=True))
            expect(row.get_by_test_id("table-cell-state")).to_have_text(state_label(state), ignore_case=True)
        counts = _count(self.run.tasks.values())
        return f"run {self.run.run_id}: names and states of its {len(self.run.tasks)} tasks ({counts})", page, False

    def graph(self) -> tuple[str, Any, bool]:
        from playwright.sync_api import expect

        page = self._run_page(height=640)  # the graph is wide: less empty space above and below
        page.get_by_role("button", name=re.compile("Show Graph")).click()
        for task in self.run.tasks:
            expect(page.locator(f'.react-flow__node[data-id="{task}"]')).to_contain_text(task)
        page.get_by_role("button", name="Collapse Details Panel").click()  # the graph gets the width
        page.wait_for_timeout(500)
        page.locator(".react-flow__controls-fitview").click()
        page.wait_for_timeout(1500)  # the fit-to-view animation
        return f"graph of {self.run.run_id}: a node for each of {len(self.run.tasks)} tasks", page, False

    def reports_index(self) -> tuple[str, Any, bool]:
        """The "newsrec reports" entry of Airflow's navigation: the plugin's /newsrec/ page in
        the UI's frame, listing the day's reports."""
        from playwright.sync_api import expect

        page = self._goto("/")
        page.get_by_role("link", name="newsrec reports").click()
        page.wait_for_url(re.compile("/plugin/newsrec"))
        expect(page.locator('iframe[src$="/newsrec/"]')).to_be_attached()
        frame = page.frame_locator('iframe[src$="/newsrec/"]')
        expect(frame.get_by_role("heading", name="newsrec reports")).to_be_visible()
        for kind in ("nightly", "quality", "drift"):
            expect(frame.locator(f'a[href*="/reports/{kind}/{self.run.day}"]').first).to_be_visible()
        return f"nav entry shows /newsrec/ in the UI: nightly/quality/drift links of {self.run.day}", page, False

    def extra_link(self, task: str = "quality_gate") -> tuple[str, Any, bool]:
        """The task's "newsrec report" extra link (Details tab), clicked: it must land on that
        task's report of the run's day."""
        from playwright.sync_api import expect

        details = f"/dags/newsrec_nightly/runs/{self.run.run_id}/tasks/{task}/details"
        page = self._goto(details)
        link = page.locator('a[href*="/newsrec/runs/"]', has_text="newsrec report")
        expect(link).to_be_visible()
        href = link.get_attribute("href") or ""
        assert f"/newsrec/runs/newsrec_nightly/{self.run.run_id}/{task}" in href, f"the link goes to {href!r}"
        expected = f"/newsrec/reports/quality/{self.run.day}/"
        clicker = self.context.new_page()  # click in a second tab; this one stays for the picture
        try:
            clicker.goto(f"{self.run.base_url}{details}", wait_until="networkidle")
            clicker.locator('a[href*="/newsrec/runs/"]', has_text="newsrec report").click()
            clicker.wait_for_url(re.compile(re.escape(expected)))
            expect(clicker).to_have_title(re.compile("Data Docs"))
        finally:
            clicker.close()
        return f'{task}\'s "newsrec report" link, clicked, lands on {expected}', page, False

    def data_docs(self) -> tuple[str, Any, bool]:
        """The day's Data Docs index, then the quality gate's validation page of one feature view."""
        from playwright.sync_api import expect

        page = self._goto(f"/newsrec/reports/quality/{self.run.day}/")
        expect(page).to_have_title(re.compile("Data Docs"))
        # the index's results table is drawn by bootstrap-table (from unpkg: refused offline),
        # so the validation pages are read from the table's data in the page itself
        pages = sorted(set(re.findall(r"validations/features/[^'\"]+?\.html", page.content())))
        assert pages, "the Data Docs index lists no validation of the features stage"
        shown = next((p for p in pages if "/user_activity/" in p), pages[0])  # the widest view, if there
        page = self._goto(f"/newsrec/reports/quality/{self.run.day}/{shown}")
        expect(page.get_by_text("Expectation Validation Result").first).to_be_visible()
        expect(page.get_by_text("Evaluated Expectations").first).to_be_visible()
        view = shown.split("/")[2]  # the feature view's name
        return f"Data Docs of {self.run.day}: {len(pages)} feature validations, {view}'s opened", page, False

    def drift(self) -> tuple[str, Any, bool]:
        from playwright.sync_api import expect

        page = self._goto(f"/newsrec/reports/drift/{self.run.day}/")
        link = page.locator('a[href*="/features-"]').first
        expect(link).to_be_visible()
        link.click()
        page.wait_for_load_state("networkidle")
        for text in ("Dataset Drift", "Drifted Columns", "Share of Drifted Columns"):
            expect(page.get_by_text(text, exact=True).first).to_be_visible()
        return f"Evidently feature drift report of {self.run.day}: summary and columns drawn", page, False

    def nightly(self) -> tuple[str, Any, bool]:
        from playwright.sync_api import expect

        page = self._goto(f"/newsrec/reports/nightly/{self.run.day}/")
        expect(page.get_by_role("heading", name=f"newsrec nightly report, {self.run.day}")).to_be_visible()
        expect(page.get_by_role("heading", name=re.compile("^Stages"))).to_be_visible()
        return f'"newsrec nightly report, {self.run.day}" with its Stages section', page, True


def _count(states: Any) -> str:
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


# (page, screenshot file, method of Pages, what it asserts when it cannot say more)
CHECKS: list[tuple[str, str, Callable[[Pages], tuple[str, Any, bool]], str]] = [
    ("grid", "airflow-nightly-grid.png", Pages.grid, "the run's grid: every task's name and state"),
    ("reports page", "newsrec-reports-page.png", Pages.reports_index, "the nav's newsrec reports page"),
    ("extra link", "airflow-task-extra-link.png", Pages.extra_link, '"newsrec report" link to the day\'s report'),
    ("data docs", "ge-data-docs.png", Pages.data_docs, "GE Data Docs of the day and a validation page"),
    ("drift report", "evidently-drift-report.png", Pages.drift, "the Evidently drift report renders"),
    ("nightly report", "nightly-report.png", Pages.nightly, "the nightly report's title and Stages section"),
    # last: the UI remembers the graph view for the pages after it
    ("graph", "airflow-nightly-graph.png", Pages.graph, "the run's graph: a node per task"),
]


def check_pages(
    run: Run, out_dir: Path, failed_dir: Path, chromium: Path = CHROMIUM, say: Callable[[str], None] = print
) -> list[PageResult]:
    """Every page of :data:`CHECKS`; a passing page's screenshot goes to ``out_dir``, a failing
    one's to ``failed_dir`` (so a broken page never replaces a committed picture)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    failed_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with browser(chromium) as context:
        pages = Pages(context, run)
        for name, filename, method, what in CHECKS:
            try:
                asserted, page, full = method(pages)
                shot = out_dir / filename
                page.screenshot(path=str(shot), full_page=full)
                result = PageResult(name, asserted, True, shot)
            except Exception as exc:  # an assertion or a page that never came: report, go on
                shot = failed_dir / filename
                try:
                    pages.page.screenshot(path=str(shot))
                except Exception:
                    shot = None
                result = PageResult(name, what, False, shot, _one_line(exc))
                pages.page = context.new_page()
            say(result.line())
            results.append(result)
    return results


def _one_line(exc: BaseException) -> str:
    """The error's first line, and for Playwright the locator it waited for."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    waited = next((line for line in lines if line.startswith("- waiting for")), "")
    head = lines[0] if lines else ""
    return f"{type(exc).__name__}: {head}{' ' + waited if waited else ''}"[:300]
