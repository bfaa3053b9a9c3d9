"""The plugin's training link opens the version that day's training registered, not whatever
is champion today."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.core import runs
from pipelines.model import registry

DAY = date(2026, 3, 4)


def test_latest_success_is_the_newest_successful_run_of_the_day(fresh_db):
    assert runs.latest_success("train", DAY) is None
    with runs.record_run("train", DAY) as run:
        run.details["version"] = "3"
    with pytest.raises(RuntimeError), runs.record_run("train", DAY) as run:
        run.details["version"] = "4"
        raise RuntimeError("killed before it registered")  # a failed run does not count
    with runs.record_run("train", date(2026, 3, 5)) as run:
        run.details["version"] = "5"  # another day
    assert runs.latest_success("train", DAY)["version"] == "3"
    with runs.record_run("train", DAY) as run:
        run.details["version"] = "6"  # a re-run of the day
    assert runs.latest_success("train", DAY)["version"] == "6"


def test_ui_link_points_at_the_version_in_the_configured_ui(monkeypatch):
    from pipelines.core.config import reset_caches

    monkeypatch.setenv("NEWSREC_MLFLOW_UI_URL", "https://mlflow.example.org/")
    reset_caches()
    assert registry.ui_link("6") == f"https://mlflow.example.org/#/models/{registry.model_name()}/versions/6"
    monkeypatch.delenv("NEWSREC_MLFLOW_UI_URL")
    reset_caches()  # no later test sees the example URL
    assert registry.ui_link("6").startswith("http://localhost:5000/#/models/")
