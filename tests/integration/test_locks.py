"""The write-domain locks of the nightly stages (pipelines/core/locks.py) on the real PostgreSQL.

- The stages the DAG draws side by side hold their locks at the same time (checked for every
  such pair of the plan, and held for real by concurrent threads).
- A run rewriting a day (``newsrec features build`` in a process of its own, paused in the
  middle of publishing the day) keeps every other run from writing that day and from reading
  it: a stage of another run is refused with a clear error past its wait, or waits and goes on
  only after the writer finished; a day outside the window is free meanwhile.
- Locks go in one fixed order, so runs taking overlapping domains never deadlock (the same
  acquisitions in opposite orders by hand do), and a request against the order is refused.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time
from collections import defaultdict
from datetime import date, timedelta
from types import SimpleNamespace

import psycopg2
import pytest

from pipelines.core import locks
from pipelines.core.errors import TransientError
from pipelines.core.locks import EXCLUSIVE, SHARED
from pipelines.nightly import plan, stages
from tests.helpers import query, simulated_world, use_database
from tests.reliability import nightly_world as nw

START = date(2026, 3, 2)
D = START + timedelta(days=3)  # built in the world, then rebuilt by the test's writer


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    home = tmp_path_factory.mktemp("locks_home")
    sim = {"users": 200, "articles_per_day": 100, "start": START, "seed": 5}
    built = [START + timedelta(days=i) for i in range(4)]  # the days before D too: D can be trained
    with simulated_world(pg_server, migrated_template, home, "locks_world", 5, built, **sim) as w:
        yield w


@pytest.fixture
def in_world(world, monkeypatch):
    use_database(monkeypatch, world["url"], world["home"])
    return world


@pytest.fixture
def lock_wait(monkeypatch, tmp_path):
    """Sets the lock wait as a night reads it: ``nightly.locks.wait_seconds`` of a params file
    (NEWSREC_PARAMS_FILE, inherited by the processes a test starts after it), with other
    sections changed as asked."""
    import yaml

    from pipelines.core.config import PROJECT_ROOT, reset_caches

    def set_wait(seconds: float, **sections: dict) -> None:
        data = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
        data["nightly"]["locks"]["wait_seconds"] = seconds
        for name, changes in sections.items():
            data[name].update(changes)
        path = tmp_path / f"params-wait-{seconds}.yaml"
        path.write_text(yaml.safe_dump(data))
        monkeypatch.setenv("NEWSREC_PARAMS_FILE", str(path))
        reset_caches()
        assert locks.wait_seconds() == seconds

    yield set_wait
    monkeypatch.delenv("NEWSREC_PARAMS_FILE", raising=False)
    reset_caches()


def _stage_locks(task: str, day: date) -> tuple[str, list[locks.Lock]]:
    """What the DAG task ``task`` of ``day`` holds: its plan call, run against stand-ins that
    return the real stage function's ``locks_for`` instead of running it (that the real stages
    hold exactly these in PostgreSQL: test_real_stages_hold_in_postgresql_what_the_stand_ins_predict)."""
    fake = SimpleNamespace(
        **{name: getattr(stages, name).locks_for for name in dir(stages) if hasattr(getattr(stages, name), "locks_for")}
    )
    results = defaultdict(dict, {"drift": {"share": None}})
    return plan.stage(task).call(fake, day, plan.RunOptions(), results)


def _parallel_pairs() -> list[tuple[str, str]]:
    """Pairs of DAG tasks neither of which is upstream of the other."""
    ancestors: dict[str, set[str]] = {}
    for s in plan.STAGES:
        ancestors[s.task] = set(s.after).union(*(ancestors[a] for a in s.after))
    tasks = [s.task for s in plan.STAGES]
    return [(a, b) for a, b in itertools.combinations(tasks, 2) if a not in ancestors[b] and b not in ancestors[a]]


def _conflicts(a: list[locks.Lock], b: list[locks.Lock]) -> list[str]:
    """Locks of ``b`` that ``a`` excludes (each set as hold() takes it: one lock a key, exclusive wins)."""
    modes = {lock.key: lock.mode for lock in locks._wanted(a)}
    return [lock.label for lock in locks._wanted(b) if lock.key in modes and EXCLUSIVE in (lock.mode, modes[lock.key])]


def test_every_pair_of_stages_the_dag_draws_side_by_side_can_hold_its_locks_together():
    pairs = _parallel_pairs()
    assert ("materialize", "drift_check") in pairs and ("materialize", "train") in pairs
    assert ("business_metrics", "features") in pairs
    for a, b in pairs:
        assert _conflicts(_stage_locks(a, D)[1], _stage_locks(b, D)[1]) == [], (a, b)
    # and the checker can fail: stages in a row of one date do conflict where they should
    assert f"the features of {D}" in _conflicts(_stage_locks("features", D)[1], _stage_locks("drift_check", D)[1])
    assert "the model registry" in _conflicts(_stage_locks("train", D)[1], _stage_locks("drift_check", D)[1])


def _granted_together(calls: list[tuple[str, list[locks.Lock]]]) -> set[str]:
    """Each call's locks held in a thread of its own; all threads wait at a barrier while they
    hold them, so the barrier opens only if every set was granted at the same time."""
    barrier = threading.Barrier(len(calls), timeout=120)
    inside: set[str] = set()
    errors: list[BaseException] = []

    def hold(what: str, wanted: list[locks.Lock]) -> None:
        try:
            with locks.hold(what, wanted):
                inside.add(what)
                barrier.wait()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=hold, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, errors
    return inside


def test_materialize_drift_and_training_hold_their_locks_at_the_same_time(fresh_db):
    first = [_stage_locks(t, D) for t in ("materialize", "drift_check", "business_metrics", "start_experiment")]
    assert _granted_together(first) == {name for name, _ in first}
    second = [_stage_locks(t, D) for t in ("materialize", "train", "business_metrics", "start_experiment")]
    assert _granted_together(second) == {name for name, _ in second}


def _granted_advisory_locks() -> list[tuple[int, int, str]]:
    """(class, object, mode) of every advisory lock granted to another session on this database."""
    return query(
        "SELECT classid::bigint, objid::bigint, mode FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND objsubid = 2 AND pid <> pg_backend_pid() "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )


def _as_granted(wanted: list[locks.Lock]) -> list[tuple[int, int, str]]:
    """``wanted`` as pg_locks shows it once held: keys as oids, shared as ShareLock."""
    return [(c & 0xFFFFFFFF, o & 0xFFFFFFFF, "ShareLock" if lock.mode == SHARED else "ExclusiveLock")
            for lock in locks._wanted(wanted) for c, o in [lock.key]]  # fmt: skip


def _plan_call_in_process(task: str, env: dict[str, str], log) -> subprocess.Popen:
    """The real stage of DAG task ``task`` for D, called through the plan as run_day calls it."""
    code = ("from collections import defaultdict; from datetime import date; "
            "from pipelines.nightly import plan, stages; "
            f"plan.stage({task!r}).call(stages, date.fromisoformat({str(D)!r}), plan.RunOptions(), "
            "defaultdict(dict, {'drift': {'share': None}}))")  # fmt: skip
    return nw.stage(code, env, log)


def test_real_stages_hold_in_postgresql_what_the_stand_ins_predict(in_world, tmp_path):
    """The real materialize, train, business metrics and start_experiment of D, each in a process
    of its own called through the plan, paused once they hold their locks (before their work
    starts), all at the same time: PostgreSQL grants exactly the locks the stand-ins of the tests
    above predict, in their modes, one set per process. A real drift of D started meanwhile
    waits for the registry, which training holds exclusive."""
    tasks = REAL_TOGETHER
    names = {task: _stage_locks(task, D)[0] for task in (*tasks, "drift_check")}
    points = [f"pause:locked:{name}" for name in names.values()]
    env = {"NEWSREC_FAULT": ",".join(points), "NEWSREC_FAULT_DIR": str(tmp_path)}
    procs = {task: _plan_call_in_process(task, env, tmp_path / f"{task}.log") for task in tasks}
    try:
        for task in tasks:
            nw.wait_for(tmp_path / f"locked:{names[task]}", procs[task], tmp_path / f"{task}.log")
        expected = sorted(row for task in tasks for row in _as_granted(_stage_locks(task, D)[1]))
        assert sorted(_granted_advisory_locks()) == expected
        assert {mode for *_, mode in expected} == {"ShareLock", "ExclusiveLock"}

        procs["drift_check"] = _plan_call_in_process("drift_check", env, tmp_path / "drift.log")
        deadline = time.monotonic() + 180
        while _waiting_on(locks.registry(SHARED).key) == 0:
            assert procs["drift_check"].poll() is None, (tmp_path / "drift.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "drift never asked for the registry"
            time.sleep(0.1)
        assert not (tmp_path / f"locked:{names['drift_check']}").exists()  # waiting, not holding
    finally:
        for proc in procs.values():
            proc.kill()  # paused or waiting before their work: nothing of theirs to finish
            proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while _granted_advisory_locks():  # the killed sessions' locks go with them
        assert time.monotonic() < deadline, _granted_advisory_locks()
        time.sleep(0.1)


REAL_TOGETHER = ("materialize", "train", "business_metrics", "start_experiment")  # the test above


def _compatible_groups(tasks: list[str]) -> list[list[str]]:
    """``tasks`` in groups whose predicted locks never conflict (first fit, plan order)."""
    groups: list[list[str]] = []
    for task in tasks:
        mine = _stage_locks(task, D)[1]
        for group in groups:
            if all(not _conflicts(_stage_locks(other, D)[1], mine) for other in group):
                group.append(task)
                break
        else:
            groups.append([task])
    return groups


def test_every_other_stage_the_dag_runs_beside_another_holds_what_its_stand_in_predicts(in_world, tmp_path):
    """The stand-ins' predictions, checked on the real stages for every DAG task that runs beside
    another (the test above covers four): each task of D called through the plan in a process
    of its own, paused once it holds its locks, in groups the predictions say hold together.
    PostgreSQL grants each group exactly the predicted locks, in their modes, and a group's
    processes all get there at the same time."""
    parallel = {task for pair in _parallel_pairs() for task in pair}
    rest = [s.task for s in plan.STAGES if s.task in parallel and s.task not in REAL_TOGETHER]
    assert {"ingest", "features", "quality_gate", "drift_check", "decide_experiments"} <= set(rest)
    groups = _compatible_groups(rest)
    assert len(groups) < len(rest)  # some run side by side for real
    for group in groups:
        names = {task: _stage_locks(task, D)[0] for task in group}
        env = {"NEWSREC_FAULT": ",".join(f"pause:locked:{n}" for n in names.values()),
               "NEWSREC_FAULT_DIR": str(tmp_path)}  # fmt: skip
        procs = {task: _plan_call_in_process(task, env, tmp_path / f"{task}.log") for task in group}
        try:
            for task in group:
                nw.wait_for(tmp_path / f"locked:{names[task]}", procs[task], tmp_path / f"{task}.log")
            expected = sorted(row for task in group for row in _as_granted(_stage_locks(task, D)[1]))
            assert sorted(_granted_advisory_locks()) == expected, group
        finally:
            for proc in procs.values():
                proc.kill()  # paused before their work: nothing of theirs to finish
                proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _granted_advisory_locks():  # the killed sessions' locks go with them
            assert time.monotonic() < deadline, _granted_advisory_locks()
            time.sleep(0.1)


def _waiting_on(key: tuple[int, int]) -> int:
    """Sessions waiting (not granted) for the advisory lock ``key``."""
    return query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = %s::int::oid "
        "AND objid = %s::int::oid AND objsubid = 2",
        key,
    )[0][0]


def test_a_day_being_rewritten_is_neither_written_nor_read_by_another_run(in_world, tmp_path, lock_wait):
    from pipelines.features import partitions

    env = {"NEWSREC_FAULT": "pause:features_publish", "NEWSREC_FAULT_DIR": str(tmp_path)}
    log = tmp_path / "build.log"
    writer = nw.cli(["features", "build", "--date", str(D)], env, log)
    marker = tmp_path / "features_publish"
    try:
        nw.wait_for(marker, writer, log)
        # mid-write: some views of D replaced, its manifest not yet written
        assert partitions.read_manifest(D) is None

        lock_wait(0.5)
        # another run's writer of D is refused, with a clear, retryable error
        with pytest.raises(
            TransientError,
            match=rf"the features of {D} is locked by another run \(newsrec features build {D} pid {writer.pid}\)",
        ):
            stages.features(D)
        # ... and so are readers of D: its feature gate, materialize, drift, and D+1's training (D is in its window)
        for stage, args in ((stages.quality, (D, "features")), (stages.materialize, (D,)), (stages.drift, (D,)),
                            (stages.train, (D + timedelta(days=1),))):  # fmt: skip
            with pytest.raises(TransientError, match=rf"the features of {D} is locked .* did not start"):
                stage(*args)
        # the warehouse day is not being rewritten: its raw gate may read it meanwhile
        with locks.hold(*stages.quality.locks_for(D, "raw")):
            pass
        # a day outside the window is free
        far = D + timedelta(days=100)
        with locks.hold(*stages.features.locks_for(far)):
            pass

        # a reader that may wait does, and gets in only once the day is whole again
        lock_wait(600)
        seen: dict = {}

        def read() -> None:
            try:
                with locks.hold(*stages.drift.locks_for(D)):
                    seen["at"] = query("SELECT clock_timestamp()")[0][0]
                    seen["manifest"] = partitions.read_manifest(D) is not None
            except BaseException as exc:  # noqa: BLE001
                seen["error"] = exc

        reader = threading.Thread(target=read)
        reader.start()
        deadline = time.monotonic() + 120
        while _waiting_on((locks.FEATURES_DAY, D.toordinal())) == 0:
            assert reader.is_alive() and time.monotonic() < deadline, seen
            time.sleep(0.05)
        assert "at" not in seen  # waiting, not reading
    finally:
        marker.unlink(missing_ok=True)
    assert nw.finish(writer) == 0, log.read_text()[-3000:]
    reader.join(timeout=120)
    assert "error" not in seen, seen
    finished = query(
        "SELECT max(finished_at) FROM ops.runs WHERE stage = 'features' AND logical_date = %s AND status = 'success' "
        "AND (details->>'pid')::int = %s",
        (D, writer.pid),
    )[0][0]
    assert seen["manifest"] and finished is not None and finished <= seen["at"]


def test_real_drift_and_training_run_while_materialize_holds_its_locks(in_world, tmp_path, lock_wait):
    """materialize of D in a process of its own, paused once it holds its locks (the online store,
    D's features shared): drift and training of D run to the end meanwhile (a lock wait of
    half a second would refuse them), while the features stage of D (a rewrite) is refused."""
    lock_wait(0.5, training={"train_days": 1})  # this world's first day has no features of the day before
    point = f"locked:materialize {D}"
    env = {"NEWSREC_FAULT": f"pause:{point}", "NEWSREC_FAULT_DIR": str(tmp_path)}
    log = tmp_path / "materialize.log"
    code = f"from pipelines.nightly import stages; print(stages.materialize({str(D)!r}))"
    other = nw.stage(code, env, log)
    marker = tmp_path / point
    try:
        nw.wait_for(marker, other, log)
        assert "share" in stages.drift(D)  # it ran (without a reference in this world it says so)
        assert "trained" in stages.train(D, trials=1, minutes=0.2)
        refused = rf"the features of {D} is locked by another run \(newsrec materialize"
        with pytest.raises(TransientError, match=refused):
            stages.features(D)
        assert other.poll() is None  # materialize was paused, holding its locks, all along
        runs = query(
            "SELECT stage FROM ops.runs WHERE logical_date = %s AND stage IN ('drift', 'train') AND status = 'success'",
            (D,),
        )
        assert {stage for (stage,) in runs} >= {"train"}  # it ran to the end
    finally:
        marker.unlink(missing_ok=True)
    assert nw.finish(other) == 0, log.read_text()[-3000:]


def test_overlapping_domains_in_any_order_never_deadlock(fresh_db, lock_wait):
    """Two runs ask for the same domains listed in opposite orders, many times over, and two
    backfill-like runs of adjacent days nest day, window and registry: all finish. The same two
    acquisitions by hand in opposite orders deadlock (PostgreSQL detects it), so the test can fail."""
    lock_wait(120)
    wanted = [locks.registry(EXCLUSIVE), *locks.day(D, EXCLUSIVE), locks.online_store(), locks.experiments(SHARED)]
    errors: list[BaseException] = []

    def flat(order: list[locks.Lock]) -> None:
        try:
            for i in range(15):
                with locks.hold(f"flat {i}", order):
                    time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def nested(day: date) -> None:
        try:
            for _ in range(8):
                with locks.hold(f"run-day {day}", locks.day(day, EXCLUSIVE)):
                    with locks.hold(*stages.train.locks_for(day)):
                        time.sleep(0.005)
                    with locks.hold(*stages.score_and_publish.locks_for(day)):
                        time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [
        threading.Thread(target=flat, args=(wanted,)),
        threading.Thread(target=flat, args=(wanted[::-1],)),
        threading.Thread(target=nested, args=(D,)),
        threading.Thread(target=nested, args=(D - timedelta(days=1),)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    # the control: the same two locks taken by hand in opposite orders deadlock
    url = os.environ["NEWSREC_DATABASE_URL"]
    a, b = psycopg2.connect(url), psycopg2.connect(url)
    a.autocommit = b.autocommit = True
    first, second = locks.registry(EXCLUSIVE).key, locks.features_day(D).key
    a.cursor().execute("SELECT pg_advisory_lock(%s, %s)", first)
    b.cursor().execute("SELECT pg_advisory_lock(%s, %s)", second)
    failed: list[BaseException] = []

    def cross(conn, key) -> None:
        try:
            conn.cursor().execute("SELECT pg_advisory_lock(%s, %s)", key)
        except psycopg2.errors.DeadlockDetected as exc:
            failed.append(exc)
            conn.close()  # its locks go, the other side gets in

    ta, tb = threading.Thread(target=cross, args=(a, second)), threading.Thread(target=cross, args=(b, first))
    ta.start(), tb.start()
    ta.join(timeout=60), tb.join(timeout=60)
    a.close(), b.close()
    assert len(failed) == 1


def test_a_request_against_the_lock_order_is_refused(fresh_db):
    with locks.hold("registry first", [locks.registry(EXCLUSIVE)]):
        with pytest.raises(locks.LockOrderError, match=rf"the features of {D} \(shared\) would be taken after"):
            with locks.hold("then a day", [locks.features_day(D)]):
                pass
    with locks.hold("a day shared", [locks.features_day(D, SHARED)]):
        with pytest.raises(locks.LockOrderError):
            with locks.hold("upgraded", [locks.features_day(D, EXCLUSIVE)]):
                pass
        with locks.hold("already held: free", [locks.features_day(D, SHARED)]):
            assert [lock.label for lock in locks.held()] == [f"the features of {D}"]
    # run_day's shape: the day exclusive outside, a stage's window, registry and rows inside
    with locks.hold("run-day", locks.day(D, EXCLUSIVE)):
        with locks.hold(*stages.train.locks_for(D)):
            assert {lock.label for lock in locks.held()} >= {"the model registry", f"the features of {D}"}
    assert locks.held() == []


def test_the_lock_wait_comes_from_params_yaml(fresh_db, tmp_path, monkeypatch):
    """The wait read from a params file, as in a night: ``nightly.locks.wait_seconds`` (the
    project's own by default), else the old run lock's ``nightly.lock_wait_seconds``, and a lock
    held elsewhere past that wait ends in the retryable error."""
    import yaml

    from pipelines.core.config import PROJECT_ROOT, reset_caches

    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    assert locks.wait_seconds() == params["nightly"]["locks"]["wait_seconds"]
    del params["nightly"]["locks"]["wait_seconds"]
    params["nightly"]["lock_wait_seconds"] = 7
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(params))
    params["nightly"]["locks"]["wait_seconds"] = 0.5
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("NEWSREC_PARAMS_FILE", str(tmp_path / "old.yaml"))
    reset_caches()
    assert locks.wait_seconds() == 7.0
    monkeypatch.setenv("NEWSREC_PARAMS_FILE", str(tmp_path / "new.yaml"))
    reset_caches()
    try:
        assert locks.wait_seconds() == 0.5
        url = os.environ["NEWSREC_DATABASE_URL"]
        other = psycopg2.connect(url)
        other.autocommit = True
        other.cursor().execute("SELECT pg_advisory_lock(%s, %s)", locks.registry(EXCLUSIVE).key)
        try:
            with pytest.raises(TransientError, match="the model registry is locked"):
                with locks.hold("a training elsewhere", [locks.registry(EXCLUSIVE)]):
                    pass
        finally:
            other.close()
    finally:
        monkeypatch.delenv("NEWSREC_PARAMS_FILE")
        reset_caches()
