"""newsrec's bulk online write against Feast's own materialize, on a small world: the same rows
in the same tables (value for value, timestamps included), the same answers from Feast's
``get_online_features``, the same registry intervals, indexes and grants; and a crash before
the switch leaves the previous values readable."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.core.config import get_settings, reset_caches
from pipelines.core.errors import NewsrecError
from pipelines.features import online_write, partitions, store
from pipelines.features.catalog import VIEWS, view_features
from tests.helpers import ROOT, query, simulated_world, use_database

START = date(2026, 4, 6)
D1, D2 = START + timedelta(days=2), START + timedelta(days=3)
ONLINE = [v for v, spec in VIEWS.items() if spec.online]
KEYS = {"user_activity": "user_id", "article_engagement": "article_id", "article_attributes": "article_id"}


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    home = tmp_path_factory.mktemp("online_write_home")
    sim = {"users": 300, "articles_per_day": 150, "start": START, "seed": 23}
    with simulated_world(pg_server, migrated_template, home, "online_write_world", 5, [D1, D2], **sim) as w:
        folder = tmp_path_factory.mktemp("online_write_params")
        w["params"] = {name: _params_file(folder, name, share) for name, share in SHARES.items()}
        yield w


SHARES = {"auto": None, "rebuild": 0.0, "merge": 1e12}  # 0: always rebuild; 1e12: merge into any table


def _params_file(folder: Path, name: str, share: float | None) -> Path:
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    if share is not None:
        data["features"]["online"]["rebuild_share"] = share
    path = folder / f"params-{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def feast_reference(world):
    """Snapshots after D1 and after D2, materialized by Feast's own code over the same windows."""
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, world["url"], world["home"])
        _reset()
        out = []
        for day in (D1, D2):
            fs = store.feature_store()
            store.apply()
            for view, start, end in store.materialize_windows(fs, day):
                fs.materialize(start_date=start, end_date=end, feature_views=[view])
            store.grant_reader_access()
            out.append(_snapshot())
    reset_caches()
    return out


def _reset() -> None:
    """No online tables, no registry: as before the first night."""
    (get_settings().feast_dir / "registry.db").unlink(missing_ok=True)
    query("DROP SCHEMA IF EXISTS feast_online CASCADE")


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def _answers(fs, view: str) -> dict:
    """Feast's get_online_features for every entity of the view's partitions, and one unknown."""
    ids = set()
    for day in (D1, D2):
        ids |= set(pd.read_parquet(partitions.view_path(view, day))[KEYS[view]].tolist())
    entity_rows = [{KEYS[view]: int(i)} for i in sorted(ids)] + [{KEYS[view]: -1}]
    features = [f"{view}:{f.name}" for f in view_features(view)]
    result = fs.get_online_features(features=features, entity_rows=entity_rows).to_dict(include_event_timestamps=True)
    return {k: [_plain(v) for v in vals] for k, vals in result.items()}


def _snapshot() -> dict:
    """The online tables' rows, Feast's answers for every known entity (and one unknown), the
    registry's intervals, the tables' indexes, constraints and grants."""
    fs = store.feature_store()
    rows, answers = {}, {}
    for view in ONLINE:
        table = f"newsrec_{view}"
        rows[view] = [
            tuple(bytes(c) if isinstance(c, memoryview) else c for c in r)
            for r in query(
                f"SELECT entity_key, feature_name, value, value_text, vector_value, event_ts, created_ts "
                f"FROM feast_online.{table} ORDER BY entity_key, feature_name"
            )
        ]
        answers[view] = _answers(fs, view)
    intervals = {
        v: (sorted(fs.get_feature_view(v).materialization_intervals), fs.get_feature_view(v).state) for v in ONLINE
    }
    indexes = query(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'feast_online' ORDER BY 2"
    )
    constraints = query(
        "SELECT conname, contype, conrelid::regclass::text FROM pg_constraint "
        "WHERE connamespace = 'feast_online'::regnamespace ORDER BY 1"
    )
    grants = query(
        "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
        "WHERE table_schema = 'feast_online' ORDER BY 1, 2, 3"
    )
    leftovers = query("SELECT relname FROM pg_class WHERE relname LIKE %s", ("%\\_\\_next%",))
    return {"rows": rows, "answers": answers, "intervals": intervals, "indexes": indexes,
            "constraints": constraints, "grants": grants, "leftovers": leftovers}  # fmt: skip


@pytest.fixture
def in_world(world, feast_reference, monkeypatch):
    use_database(monkeypatch, world["url"], world["home"])
    _reset()
    return world


def _use_share(monkeypatch, world, name: str) -> None:
    monkeypatch.setenv("NEWSREC_PARAMS_FILE", str(world["params"][name]))
    reset_caches()


@pytest.mark.parametrize("strategy", list(SHARES))
def test_bulk_write_equals_feast_materialize(in_world, feast_reference, monkeypatch, strategy):
    _use_share(monkeypatch, in_world, strategy)
    for day, reference in zip((D1, D2), feast_reference, strict=True):
        store.materialize(day)
        got = _snapshot()
        for view in ONLINE:
            assert got["rows"][view] == reference["rows"][view], view
            assert got["answers"][view] == reference["answers"][view], view
        assert got == reference
    # the comparison is not vacuous: D2 replaced D1's values and kept the entities D2 lacks
    first, second = feast_reference
    assert first["rows"]["user_activity"] != second["rows"]["user_activity"]
    d2_articles = set(pd.read_parquet(partitions.view_path("article_engagement", D2))["article_id"])
    kept = [
        a for a in pd.read_parquet(partitions.view_path("article_engagement", D1))["article_id"] if a not in d2_articles
    ]
    assert kept, "every D1 article was shown on D2 too: the carried-forward rows are not exercised"
    values = second["answers"]["article_engagement"]
    ids = values["article_id"]
    assert all(values["article_impressions_24h"][ids.index(a)] is not None for a in kept)
    assert any(v is None for v in second["answers"]["user_activity"]["user_ctr_7d"][:-1])  # NaN -> null occurs


@pytest.mark.parametrize("strategy", ["rebuild", "merge"])
def test_crash_before_the_switch_keeps_the_previous_values(in_world, feast_reference, monkeypatch, strategy):
    _use_share(monkeypatch, in_world, strategy)
    store.materialize(D1)
    assert _snapshot() == feast_reference[0]
    env = {"NEWSREC_FAULT": "kill:online_before_switch"}
    code = (
        f"import datetime; from pipelines.features import store; store.materialize(datetime.date.fromisoformat('{D2}'))"
    )
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    after_crash = _snapshot()
    assert after_crash["rows"] == feast_reference[0]["rows"]
    assert after_crash["answers"] == feast_reference[0]["answers"]
    assert after_crash["leftovers"] == []
    store.materialize(D2)  # the re-run completes the night
    assert _snapshot() == feast_reference[1]


def test_readers_see_the_old_values_until_the_switch_and_the_new_ones_after(
    in_world, feast_reference, monkeypatch, tmp_path
):
    """The writer pauses before each view's switch (new table built or rows merged, not
    committed): Feast's reads still give the previous night's values of that view, the views
    already switched give the new ones, and no read fails while tables are renamed."""
    old, new = feast_reference
    store.materialize(D1)
    monkeypatch.setenv("NEWSREC_FAULT", "pause:online_before_switch")
    monkeypatch.setenv("NEWSREC_FAULT_DIR", str(tmp_path))
    marker = tmp_path / "online_before_switch"
    failures: list[BaseException] = []

    def night() -> None:
        try:
            store.materialize(D2)
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)

    writer = threading.Thread(target=night)
    writer.start()
    fs = store.feature_store()
    for k, view in enumerate(ONLINE):
        deadline = time.monotonic() + 120
        while not marker.exists() and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), f"the writer never paused before switching {view}: {failures}"
        assert _answers(fs, view) == old["answers"][view], view
        for done in ONLINE[:k]:
            assert _answers(fs, done) == new["answers"][done], done
        marker.unlink()
        while writer.is_alive() and not marker.exists():  # read through the rename and the commit
            assert _answers(fs, view) in (old["answers"][view], new["answers"][view])
    writer.join(timeout=120)
    assert not writer.is_alive() and not failures, failures
    monkeypatch.delenv("NEWSREC_FAULT")
    assert _snapshot() == new


def test_a_missing_online_table_fails_clearly(in_world):
    store.apply()
    fs = store.feature_store()
    view, start, end = store.materialize_windows(fs, D1)[0]
    rows = online_write.latest_rows(fs, fs.get_feature_view(view), start, end)
    assert rows.num_rows > 0
    query(f"DROP TABLE feast_online.newsrec_{view}")
    with pytest.raises(NewsrecError, match=f"newsrec_{view} is missing"):
        online_write.write_view(fs, fs.get_feature_view(view), rows)
