"""Alerts for on-call: a row in ``ops.alerts``, an ERROR log line that log shippers catch, and,
when ``NEWSREC_ALERT_URL`` is set, one message to a person.

Three callers raise alerts, all through :func:`raise_alert`: the nightly DAG's failure
callback and ``newsrec run-day`` (:func:`record_task_failure`), a failing quality gate
(:func:`gate_failed`, before its task fails) and the experiment promoter (:func:`experiment_decisions`).
Each message names the run, the date, one line of reason and the night's report.

**One message per (run, task, try).** A gate that fails sends its own notice, then Airflow's
failure callback raises the same failure again. The key (source, run id, task, try) is unique
in ``ops.alerts``: the first raise inserts the row and sends; a repeat only counts up
``raised`` and sends nothing. When the row cannot be stored (the database is down) the
message goes out anyway: a duplicate is better than silence.

**The notifier is Apprise** (not Airflow's SMTP provider): alerts are raised from Airflow's
callbacks but also from ``newsrec run-day`` and the promoter, which run without Airflow, and
the SMTP provider needs an Airflow connection and Airflow imported into this core module.
Apprise is configured by one URL in the project's settings, reads plain SMTP
(``mailto://`` / ``mailtos://``) as well as Slack, Teams, Matrix, ntfy or PagerDuty, and
several URLs fan out. Off by default (no URL: the row and the log line only).

**An alert never raises.** Every step is guarded: a notifier or database failure is logged
and recorded in ``notified``; the failure that caused the alert propagates as it was.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import get_settings

log = logging.getLogger("newsrec.alerts")

REASON_CHARS = 600  # of the one-line reason in a message (ops.alerts keeps 4000)


@dataclass(frozen=True)
class Scope:
    """Who raises: the DAG (or ``newsrec run-day``), its run, the task and the try."""

    source: str
    run_id: str | None
    task: str
    try_number: int | None = 1


_scope: ContextVar[Scope | None] = ContextVar("newsrec_alert_scope", default=None)


@contextlib.contextmanager
def scope(source: str, run_id: str | None, task: str, try_number: int | None = 1) -> Iterator[Scope]:
    """Inside this block alerts raised by the code (a failing gate) belong to this task try."""
    current = Scope(source, run_id, task, try_number)
    token = _scope.set(current)
    try:
        yield current
    finally:
        _scope.reset(token)


def current_scope() -> Scope | None:
    return _scope.get()


def new_run_id(prefix: str) -> str:
    """An id for a run outside Airflow (one ``newsrec run-day`` invocation)."""
    return f"{prefix} {uuid.uuid4().hex[:12]}"


def report_link(day: date | str) -> str:
    """The nightly report of ``day``: under ``NEWSREC_REPORTS_URL`` if set, else the file."""
    settings = get_settings()
    relative = f"nightly/{day}/report.html"
    if settings.reports_url:
        return f"{settings.reports_url.rstrip('/')}/{relative}"
    return (settings.reports_dir / relative).resolve().as_uri()


def describe_error(exc: BaseException | None) -> str:
    """``Type: message`` of the error behind a failure (not Airflow's wrapper around it)."""
    if exc is None:
        return "unknown error (Airflow passed none)"
    if type(exc).__name__ == "AirflowFailException" and exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}"


def one_line(text: str, limit: int = REASON_CHARS) -> str:
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class Alert:
    kind: str  # failure | gate | decision
    scope: Scope
    day: date | str | None
    reason: str
    run: str | None = None  # the run named in the message (default: the scope's)
    details: list[str] = field(default_factory=list)

    def subject(self) -> str:
        if self.kind == "decision":
            return one_line(f"[newsrec] {self.reason} ({self.day})", 200)
        what = "gate " if self.kind == "gate" else ""
        return f"[newsrec] {what}{self.scope.task} failed for {self.day or 'no date'}"

    def body(self, note: str = "") -> str:
        s = self.scope
        run = self.run or f"{s.source} {s.run_id or '(no run id)'}"
        lines = [
            f"run:    {run}",
            f"task:   {s.task}, try {s.try_number or '-'}",
            f"date:   {self.day or '-'}",
            f"reason: {one_line(self.reason)}",
            f"report: {report_link(self.day) if self.day else '-'}",
            *self.details,
        ]
        return "\n".join(lines + ([note] if note else [])) + "\n"


def raise_alert(alert: Alert) -> str:
    """Store, log and (first time for its key) send ``alert``; returns what became of the
    message: ``off``, ``sent``, ``failed: ...`` or ``repeat`` (raised before: not sent). Never raises."""
    try:
        s = alert.scope
        log.error("ALERT %s.%s %s for %s (try %s): %s", s.source, s.task, alert.kind, alert.day, s.try_number,
                  one_line(alert.reason, 4000))  # fmt: skip
        alert_id, first, problem = _store(alert)
        if not first:
            log.info("alert for %s/%s/%s try %s raised before: not sent again", s.source, s.run_id, s.task,
                     s.try_number)  # fmt: skip
            return "repeat"
        status = send(alert.subject(), alert.body(f"(not recorded in ops.alerts: {problem})" if problem else ""))
        if alert_id is not None:
            _mark(alert_id, status)
        return status
    except Exception:  # noqa: BLE001 - an alert must not hide the failure that caused it
        log.exception("could not raise the alert")
        return "failed: see the log"


def _store(alert: Alert) -> tuple[int | None, bool, str]:
    """(row id, first time for this key, why it could not be stored)."""
    s = alert.scope
    day = alert.day if alert.day is None or isinstance(alert.day, date) else date.fromisoformat(str(alert.day))
    try:
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute(queries.load("alerts_insert"),
                        (s.source, s.run_id, s.task, day, s.try_number, alert.kind, alert.reason[:4000]))  # fmt: skip
            alert_id, raised = cur.fetchone()
        return alert_id, raised == 1, ""
    except Exception as exc:  # noqa: BLE001 - the log line is the fallback; the message still goes out
        log.exception("could not store the alert in ops.alerts")
        return None, True, one_line(f"{type(exc).__name__}: {exc}", 200)


def _mark(alert_id: int, status: str) -> None:
    try:
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute(queries.load("alerts_mark_notified"), (status[:1000], alert_id))
    except Exception:  # noqa: BLE001
        log.exception("could not record the notification of alert %s", alert_id)


def send(subject: str, body: str) -> str:
    """Send one message to every URL of ``NEWSREC_ALERT_URL``: ``off`` (none set), ``sent``
    or ``failed: <why>`` (Apprise's own warnings; URLs are never repeated, they hold secrets)."""
    setting = get_settings().alert_url
    urls = [u for u in re.split(r"[\s,]+", setting or "") if u]
    if not urls:
        return "off"
    try:
        import apprise

        notifier = apprise.Apprise()
        bad = [i for i, url in enumerate(urls, 1) if not notifier.add(url)]
        if bad:
            return f"failed: entry {bad} of NEWSREC_ALERT_URL is not an Apprise URL"
        with apprise.LogCapture(level=logging.WARNING) as captured:
            ok = notifier.notify(title=subject, body=body, body_format=apprise.NotifyFormat.TEXT)
        if ok:
            return "sent"
        return "failed: " + (one_line(captured.getvalue(), 500) or "the notifier refused the message")
    except Exception as exc:  # noqa: BLE001 - reported in ops.alerts.notified and the log
        log.exception("could not send the alert")
        return one_line(f"failed: {type(exc).__name__}: {exc}", 500)


def record_task_failure(
    dag_id: str,
    task_id: str,
    day: str | date | None,
    error: str,
    try_number: int | None = None,
    run_id: str | None = None,
) -> str:
    """A task's (last) try failed: the DAG's failure callback and ``newsrec run-day``."""
    return raise_alert(Alert("failure", Scope(dag_id, run_id, task_id, try_number), day, error))


def gate_failed(day: date | str, error: BaseException | str) -> str:
    """A gate's own notice, raised inside the failing task (its scope is the task try, so the
    failure callback that follows finds it and sends nothing). Outside a run (a gate called
    from ``newsrec quality``) the caller sees the exception and nothing is sent."""
    current = current_scope()
    if current is None:
        return "no run"
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return raise_alert(Alert("gate", current, day, reason))


def experiment_decisions(day: date, result: dict[str, Any]) -> str:
    """The promoter's decisions of ``day`` that change something (step, promote, demote,
    refused; a night of "keep" sends nothing). One message per experiment and day, whatever
    the re-runs."""
    changes = [d for d in result.get("decisions", []) if d.get("decision") != "keep"]
    if not changes or not result.get("experiment"):
        return "nothing to say"
    name = result["experiment"]
    reason = f"experiment {name}: " + "; ".join(
        f"{d['arm']} {d['decision']} ({d['share_before']:.2f} -> {d['share_after']:.2f})" for d in changes
    )
    details = [f"why:    {d['arm']}: {one_line('; '.join(d.get('reasons') or []), 300)}" for d in changes]
    current = current_scope()
    key = Scope("experiments", f"experiment {name} {day}", "decide_experiments", 1)
    run = f"{current.source} {current.run_id}" if current and current.run_id else None
    return raise_alert(Alert("decision", key, day, reason, run=run, details=details))
