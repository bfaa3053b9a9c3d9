"""The pure parts of ``make ui-check`` (the browser run itself needs Chromium: not in CI)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pipelines.core.errors import NewsrecError
from pipelines.local import ui_check, ui_pages
from tests.helpers import run_cli


def test_missing_chromium_says_which_apt_get_installs_it(tmp_path: Path) -> None:
    message = ui_pages.chromium_missing(tmp_path / "chromium")
    assert message is not None
    assert "\n" not in message
    assert "apt-get install -y --no-install-recommends chromium" in message
    assert str(tmp_path / "chromium") in message


def test_ui_check_without_chromium_stops_with_that_one_line_before_touching_anything(tmp_path: Path) -> None:
    home = tmp_path / "ui-home"
    proc = run_cli("ui-check", "--chromium", str(tmp_path / "no-chromium"), "--home", str(home), timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"newsrec: error: ui-check needs Debian's Chromium at {tmp_path / 'no-chromium'}: install it with "
        "`apt-get install -y --no-install-recommends chromium`"
    ]
    assert not home.exists()


def test_an_executable_chromium_is_accepted_and_a_plain_file_is_not(tmp_path: Path) -> None:
    binary = tmp_path / "chromium"
    binary.write_text("#!/bin/sh\n")
    assert ui_pages.chromium_missing(binary) is not None  # not executable
    binary.chmod(0o755)
    assert ui_pages.chromium_missing(binary) is None


@pytest.mark.parametrize(
    ("state", "label"),
    [("success", "Success"), ("skipped", "Skipped"), ("upstream_failed", "Upstream Failed"), ("none", "No Status"),
     (None, "No Status")],
)  # fmt: skip
def test_state_labels_match_the_airflow_ui(state: str | None, label: str) -> None:
    assert ui_pages.state_label(state) == label


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (datetime(2026, 12, 1, 16, 0, tzinfo=UTC), date(2026, 11, 30)),  # [11-30 02:00, 12-01 02:00) ended
        (datetime(2026, 12, 1, 2, 0, tzinfo=UTC), date(2026, 11, 30)),  # it ends exactly now
        (datetime(2026, 12, 1, 1, 59, tzinfo=UTC), date(2026, 11, 29)),  # 11-30's interval still open
    ],
)
def test_the_triggered_day_is_the_newest_ended_interval(now: datetime, day: date) -> None:
    assert ui_check.latest_complete_day(now) == day


def test_a_page_line_says_verdict_assertion_and_screenshot() -> None:
    passed = ui_pages.PageResult("grid", "14 tasks", True, Path("docs/img/grid.png"))
    failed = ui_pages.PageResult("drift report", "renders", False, None, "TimeoutError: no chart")
    assert passed.line() == "PASS  grid           14 tasks -> docs/img/grid.png"
    assert failed.line().startswith("FAIL  drift report   renders (TimeoutError: no chart)")


def test_a_folder_that_is_not_a_ui_check_home_is_never_wiped(tmp_path: Path) -> None:
    home = tmp_path / "someone-elses"
    home.mkdir()
    (home / "keep.txt").write_text("data")
    with pytest.raises(NewsrecError, match="not a ui-check home"):
        ui_check.use_own_home(home)
    assert (home / "keep.txt").read_text() == "data"
