"""Alerts reach a person once: a row in ops.alerts per (run, task, try), one message to the
notifier (a real SMTP server here), and a broken notifier never hides the failure."""

from __future__ import annotations

from datetime import date

import psycopg2
import pytest

from pipelines.core import alerts, faults
from pipelines.core.config import reset_caches
from pipelines.core.errors import GateFailed, failure_kind
from tests.helpers import query
from tests.smtp_inbox import free_port, smtp_inbox

DAY = date(2026, 6, 9)
RUN = "manual__2026-06-10T02:00:00+00:00"


def _alert_url(monkeypatch, url: str) -> None:
    monkeypatch.setenv("NEWSREC_ALERT_URL", url)
    reset_caches()


def test_off_by_default_the_alert_is_stored_and_not_sent(fresh_db):
    status = alerts.record_task_failure("newsrec_nightly", "features", DAY, "RuntimeError: boom", 3, RUN)
    assert status == "off"
    rows = query("SELECT source, run_id, task, logical_date, try_number, kind, raised, notified, error FROM ops.alerts")
    assert rows == [("newsrec_nightly", RUN, "features", DAY, 3, "failure", 1, "off", "RuntimeError: boom")]


def test_a_gate_notice_and_the_failure_callback_send_one_message(fresh_db, monkeypatch):
    failed = GateFailed(f"quality raw {DAY}: FAILED (1 critical check(s)): raw_events.read_dwell_present: x")
    with smtp_inbox() as inbox:
        _alert_url(monkeypatch, inbox.url)
        with alerts.scope("newsrec_nightly", RUN, "raw_gate", 1):
            assert alerts.gate_failed(DAY, failed) == "sent"
        # Airflow's callback for the same try, then the same task's second try
        again = alerts.record_task_failure("newsrec_nightly", "raw_gate", DAY, f"GateFailed: {failed}", 1, RUN)
        other_try = alerts.record_task_failure("newsrec_nightly", "raw_gate", DAY, "GateFailed: again", 2, RUN)
    assert (again, other_try) == ("repeat", "sent")
    assert len(inbox.messages) == 2
    first = inbox.texts()[0]
    assert first.startswith(f"[newsrec] gate raw_gate failed for {DAY}")
    assert f"run:    newsrec_nightly {RUN}" in first and "try 1" in first
    assert "raw_events.read_dwell_present" in first
    assert f"reports/nightly/{DAY}/report.html" in first
    rows = query("SELECT try_number, kind, raised, notified FROM ops.alerts ORDER BY alert_id")
    assert rows == [(1, "gate", 2, "sent"), (2, "failure", 1, "sent")]


def test_outside_a_run_a_failing_gate_sends_nothing(fresh_db, monkeypatch):
    with smtp_inbox() as inbox:
        _alert_url(monkeypatch, inbox.url)
        assert alerts.gate_failed(DAY, GateFailed("quality raw: FAILED")) == "no run"
    assert inbox.messages == [] and query("SELECT count(*) FROM ops.alerts") == [(0,)]


def test_a_notifier_that_cannot_send_is_recorded_and_does_not_raise(fresh_db, monkeypatch):
    _alert_url(monkeypatch, f"mailto://127.0.0.1:{free_port()}?from=newsrec@localhost&to=oncall@example.org")
    status = alerts.record_task_failure("newsrec_nightly", "train", DAY, "RuntimeError: boom", 1, RUN)
    assert status.startswith("failed:")
    (notified,) = query("SELECT notified FROM ops.alerts")[0]
    assert notified == status


def test_the_message_goes_out_when_the_database_is_down(fresh_db, monkeypatch):
    with smtp_inbox() as inbox:
        _alert_url(monkeypatch, inbox.url)
        monkeypatch.setenv("NEWSREC_DATABASE_URL", "postgresql://postgres@/nowhere?host=/nonexistent")
        reset_caches()
        status = alerts.record_task_failure("newsrec_nightly", "ingest", DAY, "TransientError: db down", 3, RUN)
    assert status == "sent"
    (text,) = inbox.texts()
    assert "not recorded in ops.alerts: TransientError: cannot connect to PostgreSQL" in text


def test_experiment_decisions_alert_once_per_experiment_and_day(fresh_db, monkeypatch):
    keep = {"arm": "c1", "decision": "keep", "share_before": 0.1, "share_after": 0.1, "reasons": ["no difference"]}
    step = {"arm": "c2", "decision": "step", "share_before": 0.1, "share_after": 0.5,
            "reasons": ["wins at share 0.10 (dwell/user +3.20 s): steps to 0.50"]}  # fmt: skip
    with smtp_inbox() as inbox:
        _alert_url(monkeypatch, inbox.url)
        assert alerts.experiment_decisions(DAY, {"experiment": "e1", "decisions": [keep]}) == "nothing to say"
        with alerts.scope("newsrec_nightly", RUN, "decide_experiments", 1):
            assert alerts.experiment_decisions(DAY, {"experiment": "e1", "decisions": [keep, step]}) == "sent"
        # a re-run of the night (another run, another try) decides nothing new and sends nothing
        with alerts.scope("newsrec_nightly", "manual__rerun", "decide_experiments", 2):
            assert alerts.experiment_decisions(DAY, {"experiment": "e1", "decisions": [keep, step]}) == "repeat"
    (text,) = inbox.texts()
    assert text.startswith("[newsrec] experiment e1: c2 step (0.10 -> 0.50)") and f"({DAY})" in text
    assert f"run:    newsrec_nightly {RUN}" in text and "steps to 0.50" in text and "c1 keep" not in text


def test_the_drop_fault_is_a_real_transient_database_error_once(fresh_db, monkeypatch, tmp_path):
    monkeypatch.setenv("NEWSREC_FAULT", "drop:stage:ingest")
    monkeypatch.setenv("NEWSREC_FAULT_DIR", str(tmp_path))
    with pytest.raises(psycopg2.OperationalError) as dropped:
        faults.checkpoint("stage:ingest")
    assert "server closed the connection" in str(dropped.value)
    assert failure_kind(dropped.value) == "transient"
    faults.checkpoint("stage:ingest")  # the retry passes
    faults.checkpoint("stage:features")  # other points are untouched
