"""Bad input from upstream stops the night at the raw quality gate, end to end: every
simulator fault and a changed warehouse schema (a renamed or dropped column) make
``run_day`` fail at ``quality_raw`` with one clear line, and nothing downstream runs: no
feature partition, no model, no batch for the date, and the live batch stays as it was.

Which expectation each fault fails, with examples, is tested in
tests/integration/test_quality.py; this module tests what the night does about it.
"""

from __future__ import annotations

import pytest

from pipelines.features import partitions
from pipelines.nightly import runner, stages
from pipelines.warehouse import simulator
from tests.helpers import query, use_database
from tests.integration.test_quality import EXPECTED_FAILURE
from tests.reliability import nightly_world as nw

SCHEMA_CHANGES = {
    "renamed-dwell": (
        "ALTER TABLE warehouse.events RENAME COLUMN dwell_seconds TO dwell_s",
        "raw_events.columns_present",
    ),
    "dropped-impression-id": ("ALTER TABLE warehouse.events DROP COLUMN impression_id", "raw_events.columns_present"),
    "renamed-published-at": (
        "ALTER TABLE warehouse.articles RENAME COLUMN published_at TO publish_time",
        "column a.published_at does not exist",
    ),
}


@pytest.fixture
def world(make_world, monkeypatch):
    url, home = make_world("bad")
    use_database(monkeypatch, url, home)
    return nw.snapshot()


def _nothing_downstream_ran(before: dict) -> None:
    assert partitions.read_manifest(nw.D) is None
    assert not list(partitions.root().glob(f"*/{nw.D}.parquet")), "no view of the day is written"
    stages = query("SELECT DISTINCT stage FROM ops.runs WHERE logical_date = %s ORDER BY 1", (nw.D,))
    assert stages == [("quality_raw",)]
    assert query("SELECT count(*) FROM serving.batches WHERE data_date = %s", (nw.D,)) == [(0,)]
    assert nw.registry_state() == before["registry"]
    assert nw.live_is_complete() and nw.live_rows() == before["live"] and nw.live_batch()[1:3] == before["live_batch"]
    alert = query("SELECT task, error FROM ops.alerts WHERE logical_date = %s", (nw.D,))
    assert [a[0] for a in alert] == ["quality_raw"] and alert[0][1].startswith("GateFailed: quality raw")


def _run_expecting_gate(match: str) -> str:
    with pytest.raises(stages.GateFailed) as failure:
        runner.run_day(nw.D, ingest_source="warehouse", force_retrain=True, **nw.RUN)
    message = str(failure.value)
    assert "\n" not in message and message.startswith(f"quality raw {nw.D}: FAILED")
    assert match in message
    return message


@pytest.mark.parametrize("fault", sorted(EXPECTED_FAILURE))
def test_simulator_fault_stops_at_the_raw_gate(world, fault):
    simulator.simulate_day(nw.D, [fault])
    message = _run_expecting_gate(EXPECTED_FAILURE[fault])
    assert "report: " in message
    (passed,) = query("SELECT passed FROM ops.quality_latest WHERE logical_date = %s AND stage = 'raw'", (nw.D,))[0]
    assert passed is False
    _nothing_downstream_ran(world)


@pytest.mark.parametrize("change", sorted(SCHEMA_CHANGES))
def test_upstream_schema_change_stops_at_the_raw_gate(world, change):
    ddl, match = SCHEMA_CHANGES[change]
    query(ddl)
    _run_expecting_gate(match)
    _nothing_downstream_ran(world)


def test_cli_says_it_in_one_line(make_world, monkeypatch, tmp_path):
    url, home = make_world("badcli")
    use_database(monkeypatch, url, home)
    query("ALTER TABLE warehouse.events RENAME COLUMN dwell_seconds TO dwell_s")
    log = tmp_path / "run-day.log"
    proc = nw.cli(["run-day", "--date", str(nw.D), "--ingest", "warehouse"], {}, log)
    assert nw.finish(proc) == 1
    output = log.read_text()
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("newsrec: error:")]
    assert len(errors) == 1 and "quality raw" in errors[0] and "dwell_seconds" in errors[0], output[-2000:]
