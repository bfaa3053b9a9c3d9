"""Publishing batches against the real PostgreSQL: atomic switch (also under a SIGKILL between
writing and switching), keeping K batches, rollback, concurrent publishes, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import DataError, NewsrecError
from pipelines.serving import publish
from tests.helpers import ROOT, admin_sql, query, run_cli, simulated_world, use_database

START = date(2026, 2, 2)
DAY = START + timedelta(days=1)
REGIONS = ("LATAM", "AFRICA", "NA", "GLOBAL")


def batch_frames(k: int = 10, salt: int = 0, skip_users: tuple[int, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A deterministic batch without a model: k unflagged articles per user (a different
    draw per ``salt``) and a fallback list per region and GLOBAL."""
    users = np.array([u for (u,) in query("SELECT user_id FROM warehouse.users ORDER BY 1") if u not in skip_users])
    arts = np.array(
        [
            a
            for (a,) in query(
                "SELECT a.article_id FROM warehouse.articles a JOIN warehouse.publications p "
                "USING (publication_id) WHERE NOT p.misinformation_flag ORDER BY 1"
            )
        ]
    )
    rng = np.random.default_rng(salt)
    picks = np.argsort(rng.random((len(users), len(arts))), axis=1)[:, :k]
    recs = pd.DataFrame(
        {
            "user_id": np.repeat(users, k),
            "rank": np.tile(np.arange(1, k + 1), len(users)),
            "article_id": arts[picks].ravel(),
            "score": np.tile(np.linspace(1.0, 0.1, k), len(users)),
            "reason": "Because you read Tests",
        }
    )
    fallback = pd.DataFrame(
        [
            (region, rank + 1, int(arts[(i * 7 + rank + salt) % len(arts)]), 1.0 / (rank + 1), f"Popular in {region}")
            for i, region in enumerate(REGIONS)
            for rank in range(k)
        ],
        columns=["region", "rank", "article_id", "score", "reason"],
    )
    return recs, fallback


@pytest.fixture(scope="module")
def publish_template(pg_server, migrated_template, tmp_path_factory):
    """A seeded warehouse nobody stays connected to, cloned for each test."""
    name = "publish_template"
    sim = {"users": 150, "articles_per_day": 60, "start": START, "seed": 41}
    with simulated_world(pg_server, migrated_template, tmp_path_factory.mktemp("publish_home"), name, 2, **sim):
        return name


@pytest.fixture
def world(pg_server, publish_template, monkeypatch, tmp_path) -> str:
    name = f"pub{os.getpid()}_{time.monotonic_ns()}"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {publish_template}")
    url = pg_server.format(db=name)
    use_database(monkeypatch, url, tmp_path / "home")
    return url


def _live() -> int | None:
    return query("SELECT batch_id FROM serving.live")[0][0]


def _statuses() -> dict[int, str]:
    return dict(query("SELECT batch_id, status FROM serving.batches"))


def _partitions() -> set[str]:
    return {
        r[0]
        for r in query(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'serving'::regnamespace "
            "AND c.relkind = 'r' AND c.relname LIKE 'recommendations_b%'"
        )
    }


def test_publish_makes_a_complete_denormalised_batch_live(world):
    recs, fallback = batch_frames()
    batch = publish.publish_batch(DAY, "m-1", recs, fallback)
    assert _live() == batch
    (status, n_users, n_rows, published_at, data_date) = query(
        "SELECT status, n_users, n_rows, published_at, data_date FROM serving.batches WHERE batch_id = %s", (batch,)
    )[0]
    assert (status, n_users, n_rows, data_date) == ("complete", recs["user_id"].nunique(), len(recs), DAY)
    assert published_at is not None
    mismatched = query(
        "SELECT count(*) FROM serving.recommendations r "
        "JOIN warehouse.articles a USING (article_id) JOIN warehouse.publications p USING (publication_id) "
        "JOIN warehouse.users u ON u.user_id = r.user_id "
        "WHERE r.batch_id = %s AND (r.title <> a.title OR r.url <> a.url OR r.category <> a.category "
        "OR r.publication <> p.name OR r.region IS DISTINCT FROM u.region)",
        (batch,),
    )[0][0]
    assert mismatched == 0
    assert query("SELECT count(*) FROM serving.recommendations WHERE batch_id = %s", (batch,))[0][0] == len(recs)
    regions = query(
        "SELECT region, count(*), min(title) <> '' FROM serving.fallback_recommendations "
        "WHERE batch_id = %s GROUP BY 1 ORDER BY 1",
        (batch,),
    )
    assert regions == [(r, 10, True) for r in sorted(REGIONS)]
    assert query("SELECT count(*) FROM serving.recommendations WHERE arm IS NOT NULL")[0][0] == 0
    assert query("SELECT status, details->>'batch_id' FROM ops.runs WHERE stage = 'publish'") == [
        ("success", str(batch))
    ]


def test_arm_is_stored_when_given(world):
    recs, fallback = batch_frames()
    recs["arm"] = np.where(recs["user_id"] % 2 == 0, "control", "treatment")
    batch = publish.publish_batch(DAY, "m-arm", recs, fallback)
    arms = dict(query("SELECT arm, count(*) FROM serving.recommendations WHERE batch_id = %s GROUP BY 1", (batch,)))
    assert set(arms) == {"control", "treatment"} and sum(arms.values()) == len(recs)


def test_a_late_batch_of_an_older_date_completes_but_never_takes_readers_back(world):
    today = publish.publish_batch(DAY, "m-today", *batch_frames(salt=1))
    late = publish.publish_batch(DAY - timedelta(days=2), "m-backfill", *batch_frames(salt=2))
    assert _live() == today == publish.live_batch_id()
    assert query("SELECT status FROM serving.batches WHERE batch_id = %s", (late,)) == [("complete",)]
    details = query("SELECT details->>'live' FROM ops.runs WHERE stage = 'publish' ORDER BY run_id")
    assert details == [("true",), ("false",)]
    publish.rollback(late)  # going back in time stays possible, explicitly
    assert _live() == late
    again = publish.publish_batch(DAY, "m-rerun", *batch_frames(salt=3))  # a date at least as new goes live
    assert _live() == again


def test_keep_retires_old_batches_and_drops_their_rows(world):
    batches = [publish.publish_batch(DAY, f"m-{i}", *batch_frames(salt=i), keep=2) for i in range(4)]
    assert batches == sorted(batches)
    assert _live() == batches[-1]
    st = _statuses()
    assert [st[b] for b in batches] == ["retired", "retired", "complete", "complete"]
    assert _partitions() == {f"recommendations_b{b}" for b in batches[2:]}
    kept = {r[0] for r in query("SELECT DISTINCT batch_id FROM serving.fallback_recommendations")}
    assert kept == set(batches[2:])
    # History stays: retired batches keep their metadata row.
    assert query("SELECT count(*) FROM serving.batches")[0][0] == 4


def test_rollback_steps_back_one_batch_at_a_time(world):
    b1, b2, b3 = (publish.publish_batch(DAY, f"m-{i}", *batch_frames(salt=i)) for i in range(3))
    assert publish.rollback() == b2 and _live() == b2
    assert publish.rollback() == b1 and _live() == b1
    with pytest.raises(NewsrecError, match="no complete batch older"):
        publish.rollback()
    assert publish.rollback(to_batch=b3) == b3
    with pytest.raises(NewsrecError, match="does not exist"):
        publish.rollback(to_batch=b3 + 100)
    assert _live() == b3
    # A retired batch cannot go live again (its rows are gone).
    b4 = publish.publish_batch(DAY, "m-4", *batch_frames(salt=4), keep=2)
    assert _statuses()[b1] == "retired"
    with pytest.raises(NewsrecError, match="retired"):
        publish.rollback(to_batch=b1)
    assert _live() == b4
    # After a rollback, the next publish keeps the newest batches and never drops the live one.
    assert publish.rollback() == b3
    b5 = publish.publish_batch(DAY, "m-5", *batch_frames(salt=5), keep=1)
    assert _live() == b5 and _statuses()[b3] == "retired" and _partitions() == {f"recommendations_b{b5}"}
    moves = query(
        "SELECT details->>'previous', details->>'live' FROM ops.runs WHERE stage = 'rollback' AND status = 'success'"
    )
    assert len(moves) == 4


def test_rollback_without_history_is_an_error(world):
    with pytest.raises(NewsrecError, match="no batch is live"):
        publish.rollback()


_CRASHING_PUBLISH = textwrap.dedent(
    """
    import sys, time
    from datetime import date
    from pathlib import Path
    import pandas as pd
    from pipelines.serving import publish

    def pause(batch_id):
        Path(sys.argv[1]).write_text(str(batch_id))
        time.sleep(600)  # killed here, between the write and the switch

    publish._before_switch = pause
    publish.publish_batch(date.fromisoformat(sys.argv[4]), "crashing", pd.read_pickle(sys.argv[2]),
                          pd.read_pickle(sys.argv[3]))
    """
)


def test_sigkill_between_write_and_switch_leaves_the_old_batch_live(world, tmp_path):
    old = publish.publish_batch(DAY, "m-old", *batch_frames(salt=1))
    recs, fallback = batch_frames(salt=2)
    recs.to_pickle(tmp_path / "recs.pkl")
    fallback.to_pickle(tmp_path / "fallback.pkl")
    marker = tmp_path / "written"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_PUBLISH, str(marker), str(tmp_path / "recs.pkl"),
         str(tmp_path / "fallback.pkl"), DAY.isoformat()],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the publish never reached the switch"
            time.sleep(0.05)
        new = int(marker.read_text())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # The old batch is live and complete; the new one was fully written but never switched.
    assert _live() == old
    assert _statuses() == {old: "complete", new: "writing"}
    assert query("SELECT count(*) FROM serving.recommendations WHERE batch_id = %s", (old,))[0][0] == 10 * 150
    assert query("SELECT count(*) FROM serving.recommendations WHERE batch_id = %s", (new,))[0][0] == len(recs)
    # The next publish fails the orphan, drops its rows and goes live normally.
    nxt = publish.publish_batch(DAY, "m-next", *batch_frames(salt=3))
    assert _live() == nxt
    assert _statuses() == {old: "complete", new: "failed", nxt: "complete"}
    assert f"recommendations_b{new}" not in _partitions()
    assert query("SELECT count(*) FROM serving.fallback_recommendations WHERE batch_id = %s", (new,))[0][0] == 0


def test_concurrent_publishes_run_one_after_the_other(world, monkeypatch):
    paused, release = threading.Event(), threading.Event()
    first_batch: list[int] = []

    def hold_first(batch_id: int) -> None:
        if not first_batch:
            first_batch.append(batch_id)
            paused.set()
            assert release.wait(60)

    monkeypatch.setattr(publish, "_before_switch", hold_first)
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def run(tag: str, salt: int) -> None:
        try:
            results[tag] = publish.publish_batch(DAY, tag, *batch_frames(salt=salt))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    a = threading.Thread(target=run, args=("a", 1))
    a.start()
    assert paused.wait(60)
    b = threading.Thread(target=run, args=("b", 2))
    b.start()
    time.sleep(1.0)
    # B waits for A's lock: it has not even created its batch row.
    assert query("SELECT count(*) FROM serving.batches")[0][0] == 1
    assert _live() is None
    release.set()
    a.join(60)
    b.join(60)
    assert not errors
    assert results["a"] == first_batch[0] < results["b"]
    assert _live() == results["b"]
    assert set(_statuses().values()) == {"complete"}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r, f: (r.drop(columns=["score"]), f), "lacks column"),
        (lambda r, f: (r.iloc[0:0], f), "empty"),
        (lambda r, f: (r, f[f["region"] != "GLOBAL"]), "GLOBAL"),
        (lambda r, f: (r.assign(rank=1), f), "same rank twice"),
        (lambda r, f: (r.assign(rank=r["rank"] + 100), f), "1..100"),
        (lambda r, f: (r.assign(article_id=r["article_id"].where(r.index > 0, 123)), f), "not in the warehouse"),
    ],
)
def test_bad_frames_are_refused_before_anything_is_written(world, mutate, message):
    live = publish.publish_batch(DAY, "good", *batch_frames())
    recs, fallback = mutate(*batch_frames(salt=9))
    with pytest.raises(DataError, match=message):
        publish.publish_batch(DAY, "bad", recs, fallback)
    assert _live() == live and _statuses() == {live: "complete"}
    assert _partitions() == {f"recommendations_b{live}"}


def test_articles_flagged_after_scoring_are_dropped_and_ranks_closed(world):
    recs, fallback = batch_frames()
    user = int(recs["user_id"].iloc[0])
    victim = int(recs["article_id"].iloc[2])  # rank 3 of the first user
    query(
        "UPDATE warehouse.publications SET misinformation_flag = true WHERE publication_id = "
        "(SELECT publication_id FROM warehouse.articles WHERE article_id = %s)",
        (victim,),
    )
    batch = publish.publish_batch(DAY, "m", recs, fallback)
    flagged = query(
        "SELECT count(*) FROM serving.recommendations r JOIN warehouse.articles a USING (article_id) "
        "JOIN warehouse.publications p USING (publication_id) WHERE p.misinformation_flag AND r.batch_id = %s",
        (batch,),
    )[0][0]
    assert flagged == 0
    ranks = [r for (r,) in query("SELECT rank FROM serving.recommendations WHERE user_id = %s ORDER BY 1", (user,))]
    assert ranks == list(range(1, len(ranks) + 1)) and len(ranks) < 10


def test_serve_cli_status_and_rollback(world):
    first = publish.publish_batch(DAY, "cli-1", *batch_frames(salt=1))
    second = publish.publish_batch(DAY, "cli-2", *batch_frames(salt=2))
    proc = run_cli("serve", "status")
    assert proc.returncode == 0, proc.stderr
    assert f"live batch: {second}" in proc.stdout and "cli-1" in proc.stdout
    proc = run_cli("serve", "rollback")
    assert proc.returncode == 0, proc.stderr
    assert f"live batch is now {first}" in proc.stdout
    proc = run_cli("serve", "rollback")
    assert proc.returncode == 1 and proc.stderr.startswith("newsrec: error: no complete batch older")
    assert "Traceback" not in proc.stderr
    proc = run_cli("serve", "rollback", "--to", str(second))
    assert proc.returncode == 0 and _live() == second


def test_error_while_writing_fails_the_batch_and_keeps_the_old_one(world, monkeypatch):
    from pipelines.core import db

    old = publish.publish_batch(DAY, "m-old", *batch_frames(salt=1))
    real_copy = db.copy_frame

    def broken_copy(cur, table, frame, *args, **kwargs):
        if table.startswith("serving.recommendations_b"):
            real_copy(cur, table, frame.iloc[:5])
            raise OSError("disk full (simulated)")
        return real_copy(cur, table, frame, *args, **kwargs)

    monkeypatch.setattr(db, "copy_frame", broken_copy)
    with pytest.raises(OSError, match="simulated"):
        publish.publish_batch(DAY, "m-broken", *batch_frames(salt=2))
    monkeypatch.setattr(db, "copy_frame", real_copy)
    statuses = _statuses()
    (broken,) = [b for b, s in statuses.items() if b != old]
    assert _live() == old and statuses == {old: "complete", broken: "failed"}
    assert _partitions() == {f"recommendations_b{old}"}  # the half-written table went with the transaction
    assert query("SELECT status FROM ops.runs WHERE stage = 'publish' ORDER BY run_id") == [("success",), ("failed",)]
