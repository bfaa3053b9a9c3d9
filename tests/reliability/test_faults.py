"""Crashes in the middle of a night, against the real components: the process is SIGKILLed at
named points (``NEWSREC_FAULT``, see ``pipelines/core/faults.py``) while it registers a model,
before it promotes one, between scoring and the live switch, and while it publishes feature
partitions; then the date is re-run while the database restarts under it. After every crash
the live batch is complete and unchanged, the champion is unchanged, and nothing half-written
is visible; the final re-run gives what an undisturbed run gives.

The tests of this module share one world and run in order, like the crashes of one bad
night; a migration killed half-way gets a world of its own.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from pipelines.core.errors import NewsrecError
from pipelines.features import partitions
from tests.helpers import query
from tests.reliability import nightly_world as nw

KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def crash_world(make_world):
    """A clone of the template with D's features built: the state before the night of D."""
    from pipelines.features.build import build

    url, home = make_world("crash")
    with nw.pointed_at(url, home):
        build(nw.D)
        yield {"url": url, "home": home, "initial": nw.snapshot()}


@pytest.fixture
def world(crash_world, monkeypatch):
    from tests.helpers import use_database

    use_database(monkeypatch, crash_world["url"], crash_world["home"])
    return crash_world


def _killed(proc, log: Path) -> None:
    code = nw.finish(proc)
    assert code == KILLED, f"expected a SIGKILL, got exit code {code}:\n{log.read_text()[-3000:]}"


def _kill_cli_at(world, tmp_path: Path, point: str, args: list[str]) -> None:
    """Run ``newsrec ARGS`` until it SIGKILLs itself at crash point ``point``; nothing served changed."""
    log = tmp_path / f"{args[0]}.log"
    _killed(nw.cli(args, {"NEWSREC_FAULT": f"kill:{point}"}, log), log)
    _nothing_served_changed(world)


def _nothing_served_changed(world) -> None:
    """The live batch and the champion are those of before the night."""
    initial = world["initial"]
    assert nw.live_is_complete()
    assert nw.live_rows() == initial["live"]
    assert nw.live_batch()[1:3] == initial["live_batch"]
    assert nw.registry_state()["champion"] == initial["registry"]["champion"]


def test_kill_while_registering_leaves_no_version(world, tmp_path):
    _kill_cli_at(world, tmp_path, "register_logged", ["train", "--date", str(nw.D), *nw.RUN_ARGS])
    # the run was logged (model file and all) but no version points at it
    from pipelines.model import registry

    mlflow = registry._mlflow()
    runs = mlflow.search_runs([registry.experiment_id()], filter_string=f"tags.logical_date = '{nw.D}'")
    assert len(runs) == 1
    assert nw.registry_state() == world["initial"]["registry"]
    assert registry.find_version(logical_date=nw.D.isoformat()) is None


def test_kill_before_promotion_leaves_the_champion(world, tmp_path):
    _kill_cli_at(world, tmp_path, "promote_start", ["train", "--date", str(nw.D), *nw.RUN_ARGS])
    # the challenger is registered completely (it passed the gate) but is not champion yet
    state = nw.registry_state()
    new = set(state["versions"]) - set(world["initial"]["registry"]["versions"])
    assert len(new) == 1
    (version,) = new
    assert state["versions"][version][0] == nw.D.isoformat() and state["versions"][version][2] == "true"
    assert query("SELECT count(*) FROM ops.model_decisions WHERE challenger_version = %s", (version,)) == [(0,)]


def test_kill_between_scoring_and_switch_keeps_the_live_batch(world, tmp_path):
    log = tmp_path / "publish.log"
    code = f"from pipelines.nightly import stages; stages.score_and_publish('{nw.D}')"
    proc = nw.stage(code, {"NEWSREC_FAULT": "kill:publish_before_switch"}, log)
    _killed(proc, log)
    _nothing_served_changed(world)
    # the new batch was written in full beside the live one and never switched to
    (orphan,) = query("SELECT batch_id, status FROM serving.batches WHERE data_date = %s", (nw.D,))
    assert orphan[1] == "writing"
    assert query("SELECT count(*) > 0 FROM serving.recommendations WHERE batch_id = %s", (orphan[0],)) == [(True,)]
    world["orphan_batch"] = orphan[0]


def test_kill_while_publishing_features_leaves_no_partial_day(world, tmp_path):
    from pipelines.features.catalog import VIEWS

    first, second = list(VIEWS)[:2]  # the order publish_day moves the views in
    inode = {v: partitions.view_path(v, nw.D).stat().st_ino for v in (first, second)}
    others = sorted(p.name for p in (partitions.root() / "_manifests").glob("*.json") if p.stem != str(nw.D))
    _kill_cli_at(world, tmp_path, "features_publish", ["features", "build", "--date", str(nw.D)])
    # the day was half replaced (the first view's file is new, the second's is not)...
    assert partitions.view_path(first, nw.D).stat().st_ino != inode[first]
    assert partitions.view_path(second, nw.D).stat().st_ino == inode[second]
    # ...so it has no manifest, and every reader refuses it instead of reading a mix
    assert partitions.read_manifest(nw.D) is None
    with pytest.raises(NewsrecError, match="missing or incomplete"):
        partitions.require_day(nw.D)
    assert sorted(p.name for p in (partitions.root() / "_manifests").glob("*.json")) == others
    assert list((partitions.root() / ".staging").iterdir()), "the killed build left its staging folder"


def test_rerun_through_a_database_restart_matches_an_undisturbed_run(
    world, reference, rel_server, tmp_path, monkeypatch
):
    """Re-run the date after all those crashes, and restart PostgreSQL while it runs (between
    the drift check and training): the run completes and serves what an undisturbed run does.
    The run is ``run_day`` in a thread of this process (what the restart cuts is its database
    sessions, a process of its own would only add its imports)."""
    monkeypatch.setenv("NEWSREC_FAULT", "pause:stage:train")
    monkeypatch.setenv("NEWSREC_FAULT_DIR", str(tmp_path))
    night = nw.NightInThread()
    marker = tmp_path / "stage:train"
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert night.is_alive(), f"the run ended before it reached training: {night.outcome}"
        assert time.monotonic() < deadline, "the run never reached training"
        time.sleep(0.1)
    rel_server.restart()
    marker.unlink()
    steps = night.result()
    monkeypatch.delenv("NEWSREC_FAULT")
    assert steps["publish"].get("batch_id")

    state = nw.snapshot()
    expected = reference["after"]
    assert nw.live_is_complete()
    assert state["live_batch"] == expected["live_batch"]
    assert state["live"] == expected["live"]
    assert state["registry"] == expected["registry"]
    assert state["decisions"] == expected["decisions"]
    assert state["manifests"] == expected["manifests"]
    # what the crashes left is cleaned up: the orphan batch failed and its rows are gone,
    # the killed feature build's staging folder is gone
    orphan = world["orphan_batch"]
    assert query("SELECT status FROM serving.batches WHERE batch_id = %s", (orphan,)) == [("failed",)]
    assert query("SELECT to_regclass(%s)", (f"serving.recommendations_b{orphan}",)) == [(None,)]
    assert not list((partitions.root() / ".staging").iterdir())
    # exactly one live pointer, and the run's locks were held again after the restart
    assert query("SELECT count(*) FROM serving.live") == [(1,)]


def test_kill_during_a_migration_applies_nothing(make_world, monkeypatch, tmp_path):
    """A migration killed after its DDL ran but before it committed leaves no trace; the
    live batch is untouched; ``db migrate`` then applies it."""
    from pipelines.core.config import get_settings
    from tests.helpers import use_database

    url, home = make_world("migrate")
    use_database(monkeypatch, url, home)
    sql_dir = tmp_path / "sql"
    shutil.copytree(get_settings().sql_dir, sql_dir)
    (sql_dir / "migrations" / "0099_probe.sql").write_text(
        "ALTER TABLE serving.batches ADD COLUMN probe text;\n"
        "UPDATE serving.batches SET probe = 'seen';\n"
        "CREATE TABLE ops.probe (id int PRIMARY KEY);\n"
    )
    live_before, batch_before = nw.live_rows(), nw.live_batch()
    env = {"NEWSREC_SQL_DIR": str(sql_dir)}
    log = tmp_path / "migrate.log"
    _killed(nw.cli(["db", "migrate"], {**env, "NEWSREC_FAULT": "kill:migration:0099"}, log), log)

    assert query("SELECT count(*) FROM ops.schema_migrations WHERE version = '0099'") == [(0,)]
    columns = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'batches' AND column_name = 'probe'"
    assert query(columns) == [(0,)]
    assert query("SELECT to_regclass('ops.probe')") == [(None,)]
    assert nw.live_is_complete() and nw.live_rows() == live_before and nw.live_batch() == batch_before

    assert nw.finish(nw.cli(["db", "migrate"], env, log)) == 0, log.read_text()
    assert query("SELECT count(*) FROM ops.schema_migrations WHERE version = '0099'") == [(1,)]
    assert query(columns) == [(1,)]
    assert nw.live_is_complete() and nw.live_rows() == live_before
