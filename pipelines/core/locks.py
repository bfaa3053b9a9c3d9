"""Every advisory lock of the project, and the write-domain locks of the nightly stages.

The keys live here so that no two parts of the code pick the same number by accident; each
names what it serialises.

Write domains
-------------
A nightly stage holds PostgreSQL session advisory locks on the domains it reads and writes,
for as long as it runs (:func:`hold`):

- **the warehouse day D** (its events): exclusive for ingest, which loads or simulates it;
  shared for every stage that reads it.
- **the features of day D** (its partitions, manifest and daily partials): exclusive for the
  features stage, which rewrites them; shared for every stage that reads them (the feature
  gate, materialize, drift, the retrain checker, training, scoring, the report).
  A stage of D also reads earlier days (the 28-day feature window, the training and drift
  windows, the baselines' history): it holds those shared too (``nightly.locks.read_days``
  days before D). So no stage reads a day that another run is rewriting, and two runs never
  rewrite one day together.
- **one stage of day D** (exclusive): the ops rows a stage writes for D (quality verdicts,
  drift results, business metrics, decisions) have one writer at a time.
- **the model registry** (registrations, promotions, the champion alias): exclusive for train,
  decide_experiments (it may promote) and the rollbacks; shared for the stages that read the
  champion (drift, the retrain checker, scoring).
- **the experiments** (``ops.experiments`` and their arms): exclusive for start_experiment and
  decide_experiments, shared for scoring.
- **the online store** (Feast's online tables hold the latest values, not one per day):
  exclusive for materialize.
- **the serving publish**: its own lock, taken inside the publish (``PUBLISH``).

``newsrec run-day`` and ``newsrec backfill`` hold day D exclusive and the days it reads
shared for the whole date, so a CLI backfill and a nightly run take turns date by date and a
night sees one version of every day it reads; each stage inside takes the rest. An Airflow
run's guarantee is per stage: between two of its tasks another run may rewrite an earlier day
(never while a task reads it). An Airflow task takes its stage's locks for itself, so
materialize (online store, the features of D shared) runs beside drift and training (registry,
the features of D shared), and business_metrics (the warehouse only) beside the features stage.

Lock order (no deadlock)
------------------------
Locks are always taken in this order, and never in another: days from the newest to the
oldest (on one day its warehouse before its features), then stage-of-day locks, then the
registry, then the experiments, then the online store, then the serving publish.
:func:`hold` sorts a stage's locks into it, and refuses (``LockOrderError``) a nested request
that would take a lock ranked before one the same run already holds (e.g. a day after the
registry, or upgrading a shared day to exclusive). A waiting run therefore only ever waits
for a lock ranked after every lock it holds, so no cycle of waits can form. Days newest-first
fits the data: a run of D holds D and waits only for earlier days, whose runs never wait for D.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from psycopg2 import errors

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.errors import TransientError
from pipelines.core.faults import checkpoint

MIGRATIONS = 72061  # transaction lock: one migration run at a time
PUBLISH = 72062  # session lock: one publish (batch write and live switch) at a time
# 72063 was the single nightly run lock (replaced by the write domains below); never reuse it
RUN_ROWS = 72064  # lock class (with the run id) of 'running' ops.runs rows, held by their process
WAREHOUSE_DAY = 72065  # lock class (with the date's ordinal): the warehouse's events of one day
FEATURES_DAY = 72068  # lock class (with the date's ordinal): the features of one day
STAGE_DAY = 72066  # lock class (with a hash of stage and date): one stage's ops rows of one day
DOMAIN = 72067  # lock class of the domains without a date (objects below)
_REGISTRY_OBJECT = 1
_EXPERIMENTS_OBJECT = 3
_ONLINE_STORE_OBJECT = 2

SHARED = "shared"
EXCLUSIVE = "exclusive"


class LockOrderError(RuntimeError):
    """A bug: a nested lock request breaks the fixed lock order (it could deadlock)."""


@dataclass(frozen=True)
class Lock:
    """One advisory lock: where it sits in the fixed order, its key, its mode and what it guards."""

    rank: tuple[int, ...]
    key: tuple[int, int]
    mode: str
    label: str = field(compare=False)


def warehouse_day(d: date, mode: str = SHARED) -> Lock:
    """The warehouse's day ``d`` (its events, what ingest loads or simulates)."""
    return Lock((0, -d.toordinal(), 0), (WAREHOUSE_DAY, d.toordinal()), mode, f"the warehouse day {d}")


def features_day(d: date, mode: str = SHARED) -> Lock:
    """The features of day ``d`` (its partitions, manifest and daily partials)."""
    return Lock((0, -d.toordinal(), 1), (FEATURES_DAY, d.toordinal()), mode, f"the features of {d}")


def day(d: date, mode: str = SHARED) -> list[Lock]:
    """All the data of day ``d``: its warehouse day and its features."""
    return [warehouse_day(d, mode), features_day(d, mode)]


def read_window(d: date, features: bool = True) -> list[Lock]:
    """Day ``d`` and the ``nightly.locks.read_days`` days before it, shared (the warehouse days,
    and with ``features`` their features): what a stage of ``d`` may read (the longest window a
    stage reads is the 28-day feature window)."""
    return [lock for x in window_days(d) for lock in (day(x) if features else [warehouse_day(x)])]


def window_days(d: date) -> list[date]:
    """``d`` and the ``nightly.locks.read_days`` days before it, newest first."""
    return [d - timedelta(days=i) for i in range(int(_settings().get("read_days", 28)) + 1)]


def stage_of_day(stage: str, d: date) -> Lock:
    """Stage ``stage``'s own rows of day ``d`` (always exclusive)."""
    obj = zlib.crc32(f"{stage}:{d.isoformat()}".encode()) & 0x7FFFFFFF
    return Lock((1, obj), (STAGE_DAY, obj), EXCLUSIVE, f"stage {stage} of {d}")


def registry(mode: str = SHARED) -> Lock:
    """The model registry and the decisions that move it (training, promotions, experiments)."""
    return Lock((2, 0), (DOMAIN, _REGISTRY_OBJECT), mode, "the model registry")


def experiments(mode: str = SHARED) -> Lock:
    """The experiments (``ops.experiments``: started, stepped, ended) and their arms."""
    return Lock((2, 1), (DOMAIN, _EXPERIMENTS_OBJECT), mode, "the experiments")


def online_store(mode: str = EXCLUSIVE) -> Lock:
    """Feast's online store (latest values, one copy for all days)."""
    return Lock((3, 0), (DOMAIN, _ONLINE_STORE_OBJECT), mode, "the online store")


def _settings() -> dict[str, Any]:
    return dict(params().get("nightly", {}).get("locks", {}))


def wait_seconds() -> float:
    """How long a stage waits for its locks before a TransientError (Airflow retries it)."""
    old = params().get("nightly", {}).get("lock_wait_seconds", 3 * 3600)  # the run lock's key, still read
    return float(_settings().get("wait_seconds", old))


def take(conn: Any, key: int, wait_s: float, floor_ms: int = 0) -> bool:
    """Take session advisory lock ``key`` on ``conn``, waiting up to ``wait_s`` seconds (0 ms
    means no limit in PostgreSQL, hence ``floor_ms``). False when it timed out (``conn`` is then
    rolled back); True when held (committed: the lock outlives the transaction)."""
    return _lock_within(conn, "locks_advisory_lock", (key,), max(floor_ms, int(wait_s * 1000)))


def _take_lock(conn: Any, lock: Lock, wait_s: float) -> bool:
    """Like :func:`take`, for a (class, object) key in the lock's mode."""
    name = "locks_advisory_lock_pair_shared" if lock.mode == SHARED else "locks_advisory_lock_pair"
    return _lock_within(conn, name, lock.key, max(1, int(wait_s * 1000)))


def _lock_within(conn: Any, statement: str, args: tuple, timeout_ms: int) -> bool:
    """Run lock ``statement`` under a lock timeout of ``timeout_ms``: False when it timed out
    (rolled back), True when held (committed)."""
    with conn.cursor() as cur:
        cur.execute(queries.load("locks_set_timeout"), (f"{timeout_ms}ms",))
        try:
            cur.execute(queries.load(statement), args)
        except errors.LockNotAvailable:
            conn.rollback()
            return False
        cur.execute(queries.load("locks_reset_timeout"))
    conn.commit()
    return True


@dataclass
class _Holder:
    """One connection holding some locks for one scope (a run, a stage)."""

    what: str
    locks: list[Lock]
    conn: Any = None


# The holders of this thread's run, outermost first. A new thread starts with none: two runs in
# two threads of one process (the tests) are two runs, as two processes are.
_HELD: contextvars.ContextVar[tuple[_Holder, ...]] = contextvars.ContextVar("newsrec_locks", default=())


def held() -> list[Lock]:
    """The locks this thread's run holds now (outermost first)."""
    return [lock for holder in _HELD.get() for lock in holder.locks]


def _covered(have: dict[tuple[int, int], str], lock: Lock) -> bool:
    mode = have.get(lock.key)
    return mode == EXCLUSIVE or (mode == SHARED and lock.mode == SHARED)


def _wanted(locks: Iterable[Lock]) -> list[Lock]:
    """One lock per key (exclusive wins), in the fixed order."""
    out: dict[tuple[int, int], Lock] = {}
    for lock in locks:
        if lock.key not in out or lock.mode == EXCLUSIVE:
            out[lock.key] = lock
    return sorted(out.values(), key=lambda lock: lock.rank)


def _acquire(locks: list[Lock], what: str, wait_s: float) -> Any:
    """A new connection holding ``locks`` (taken in order), or TransientError naming the first
    one another run held past the wait (nothing is then held)."""
    conn = db.connect(application_name=f"newsrec {what} pid {os.getpid()}"[:63])  # names the holder
    try:
        deadline = time.monotonic() + wait_s
        for lock in locks:
            if not _take_lock(conn, lock, max(0.0, deadline - time.monotonic())):
                raise TransientError(
                    f"{lock.label} is locked by another run ({_holders(conn, lock)}) and stayed so for over "
                    f"{wait_s:g} s; {what} did not start (it needs it {lock.mode})"
                )
    except BaseException:
        with contextlib.suppress(Exception):
            conn.close()
        raise
    return conn


def _holders(conn: Any, lock: Lock) -> str:
    """Who holds ``lock`` now, for the error message (best effort)."""
    try:
        with conn.cursor() as cur:
            cur.execute(queries.load("locks_holders"), lock.key)
            rows = cur.fetchall()
        conn.rollback()
    except Exception:  # noqa: BLE001 - only a message
        return "holder unknown"
    return "; ".join(app or f"server pid {pid}" for pid, mode, app in rows) or "holder gone"


def _alive(conn: Any) -> bool:
    try:
        with conn.cursor() as cur:
            cur.execute(queries.load("locks_connection_alive"))
        conn.rollback()
        return True
    except Exception:  # noqa: BLE001 - a dead connection (e.g. the server restarted) lost its locks
        return False


def _revive(holders: tuple[_Holder, ...], wait_s: float) -> None:
    """Take again the locks of outer holders whose connection died (a server restart)."""
    for holder in holders:
        if holder.conn is not None and not _alive(holder.conn):
            with contextlib.suppress(Exception):
                holder.conn.close()
            holder.conn = None
            holder.conn = _acquire(holder.locks, holder.what, wait_s)


@contextlib.contextmanager
def hold(what: str, locks: Iterable[Lock]) -> Iterator[None]:
    """Hold ``locks`` while the block runs (waiting up to ``nightly.locks.wait_seconds`` for
    them; past it a TransientError that names the lock, its holder and ``what``).

    Locks this thread's run already holds (as strongly) are free: ``run_day`` holds day D
    exclusive, and each stage inside takes only what it adds. A nested request that would take
    a lock ranked before one already held raises LockOrderError: the fixed order (see the
    module) is what keeps runs from deadlocking. If the server restarted since an outer lock was
    taken, it is taken again first."""
    wait_s = wait_seconds()
    outer = _HELD.get()
    _revive(outer, wait_s)
    have: dict[tuple[int, int], str] = {}
    for lock in held():
        have[lock.key] = EXCLUSIVE if have.get(lock.key) == EXCLUSIVE else lock.mode
    need = [lock for lock in _wanted(locks) if not _covered(have, lock)]
    if need and outer:
        top = max((lock for lock in held()), key=lambda lock: lock.rank)
        early = [lock for lock in need if lock.rank <= top.rank]
        if early:
            raise LockOrderError(
                f"{what}: {early[0].label} ({early[0].mode}) would be taken after {top.label} ({top.mode}); "
                "locks go days newest first, stage-of-day, registry, experiments, online store, publish"
            )
    holder = _Holder(what, need)
    if need:
        holder.conn = _acquire(need, what, wait_s)
    token = _HELD.set((*outer, holder))
    try:
        checkpoint(f"locked:{what}")
        yield
    finally:
        _HELD.reset(token)
        if holder.conn is not None:
            with contextlib.suppress(Exception):
                holder.conn.close()  # closing the session releases its advisory locks
