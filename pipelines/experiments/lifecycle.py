"""Create, inspect and stop experiments (``newsrec experiment create|show|stop``, the DAG).

An experiment has a champion arm (whatever model is champion when a batch is scored), one or
more registered challengers and optionally a popularity control, each with a share of the
cohort's users; the champion's share is the rest. Every refusal is a one-line
:class:`~pipelines.core.errors.NewsrecError` and leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError, TransientError
from pipelines.experiments import sequential
from pipelines.experiments.arms import CHAMPION
from pipelines.model import registry

log = logging.getLogger(__name__)

_EPS = 1e-9


def settings() -> dict[str, Any]:
    """``params.yaml``'s experiments section with its defaults (stored with each experiment)."""
    cfg = dict(params("experiments") or {})
    cfg.setdefault("share_steps", [0.1, 0.5, 1.0])
    cfg.setdefault("min_champion_share", 0.1)
    test = {"alpha": 0.04, "mixture_tau": 0.05, "confidence": 0.95, "min_days": 3, "min_users": 200,
            "horizon_days": 11, "spending": "obrien_fleming", **cfg.get("test", {})}  # fmt: skip
    cfg["test"] = test
    try:  # a bad plan is refused when the experiment is made, not on the night it reaches the step
        sequential.plan(test, 1)
    except ValueError as exc:
        raise NewsrecError(f"experiments.test in params.yaml: {exc}") from exc
    return cfg


@dataclass
class ArmSpec:
    name: str
    kind: str
    model_version: str | None
    share: float


@dataclass
class ExperimentInfo:
    experiment_id: int
    name: str
    salt: str
    status: str
    cohort_size: int | None
    cohort_share: float
    users_at_start: int | None
    started_on: date | None
    stopped_on: date | None
    stop_reason: str | None
    config: dict[str, Any]
    arms: list[dict[str, Any]] = field(default_factory=list)


def arm_specs(
    challengers: list[str],
    challenger_share: float | None = None,
    popularity_share: float = 0.0,
    champion_share: float | None = None,
) -> list[ArmSpec]:
    """The arms in layout order: challengers, the popularity control, the champion (the rest).

    One challenger is called ``challenger``; several are ``challenger-v<version>``."""
    if not challengers and popularity_share <= 0:
        raise NewsrecError("an experiment needs a challenger (--challenger VERSION) or a popularity arm")
    if len(set(challengers)) != len(challengers):
        raise NewsrecError("the same challenger version is given twice")
    share = float(challenger_share if challenger_share is not None else settings()["share_steps"][0])
    for label, value in (("challenger share", share), ("popularity share", popularity_share)):
        if not 0 <= value <= 1:
            raise NewsrecError(f"{label} {value} is not between 0 and 1")
    arms = [
        ArmSpec("challenger" if len(challengers) == 1 else f"challenger-v{v}", "challenger", str(v), share)
        for v in challengers
    ]
    if popularity_share > 0:
        arms.append(ArmSpec("popularity", "popularity", None, float(popularity_share)))
    others = sum(a.share for a in arms)
    rest = 1.0 - others
    if champion_share is None:
        champion_share = rest
    if abs(others + champion_share - 1.0) > 1e-6 or champion_share < -_EPS:
        raise NewsrecError(f"arm shares sum to {others + champion_share:.4g}, not 1")
    arms.append(ArmSpec(CHAMPION, "champion", None, max(float(champion_share), 0.0)))
    return arms


def _check_versions(arms: list[ArmSpec]) -> None:

    for arm in arms:
        if arm.kind != "challenger":
            continue
        info = registry.version_info(str(arm.model_version))
        if info is None or not str(arm.model_version).isdigit():
            raise NewsrecError(f"unknown model version {arm.model_version!r} (see `newsrec model list`)")
        if info["tags"].get("complete") != "true":
            raise NewsrecError(f"model version {arm.model_version} was not registered completely")


def create(
    name: str,
    challengers: list[str],
    challenger_share: float | None = None,
    popularity_share: float = 0.0,
    champion_share: float | None = None,
    cohort_size: int | None = None,
    salt: str | None = None,
    started_on: date | None = None,
    check_versions: bool = True,
) -> ExperimentInfo:
    """Register a running experiment; the next publish (from ``started_on``) serves its arms."""
    name = name.strip()
    if not name:
        raise NewsrecError("an experiment needs a name")
    arms = arm_specs(list(challengers), challenger_share, popularity_share, champion_share)
    if cohort_size is not None and cohort_size < 1:
        raise NewsrecError("--cohort-size must be at least 1")
    if check_versions:
        _check_versions(arms)
    cfg = settings()
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("experiments_lock_table"))
        cur.execute(queries.load("experiments_running_name"))
        running = cur.fetchone()
        if running:
            raise NewsrecError(f"experiment {running[0]!r} is already running; stop it first")
        cur.execute(queries.load("experiments_name_taken"), (name,))
        if cur.fetchone():
            raise NewsrecError(f"an experiment named {name!r} exists already; choose another name")
        cur.execute(queries.load("experiments_count_users"))
        (users,) = cur.fetchone()
        share = 1.0
        if cohort_size is not None:
            if not users:
                raise NewsrecError("the warehouse has no users to draw a cohort from")
            share = min(1.0, cohort_size / users)
        cur.execute(
            queries.load("experiments_insert"),
            (name, salt or name, cohort_size, share, users, started_on, json.dumps(cfg)),
        )
        (experiment_id,) = cur.fetchone()
        for position, arm in enumerate(arms):
            cur.execute(
                queries.load("experiments_insert_arm"),
                (experiment_id, arm.name, position, arm.kind, arm.model_version, arm.share, started_on),
            )
            cur.execute(
                queries.load("experiments_insert_created_share"), (experiment_id, arm.name, started_on, arm.share)
            )
    return get(name)


def _resolve(cur: Any, ref: str | None) -> int:
    if ref is None:
        cur.execute(queries.load("experiments_resolve_default"))
    elif ref.isdigit():
        cur.execute(queries.load("experiments_resolve_id_or_name"), (int(ref), ref))
    else:
        cur.execute(queries.load("experiments_resolve_name"), (ref,))
    row = cur.fetchone()
    if row is None:
        raise NewsrecError("no experiment yet" if ref is None else f"no experiment {ref!r}")
    return int(row[0])


def get(ref: str | None = None) -> ExperimentInfo:
    """An experiment by name or id (default: the running one, else the newest)."""
    with db.transaction() as conn, conn.cursor() as cur:
        experiment_id = _resolve(cur, ref)
        cur.execute(queries.load("experiments_get"), (experiment_id,))
        info = ExperimentInfo(*cur.fetchone())
        cur.execute(queries.load("experiments_arms"), (experiment_id,))
        keys = ("arm", "kind", "model_version", "share", "step", "status", "since")
        info.arms = [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]
    return info


def running() -> ExperimentInfo | None:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("experiments_running_name"))
        row = cur.fetchone()
    return get(row[0]) if row else None


def listing() -> list[tuple]:
    """Every experiment, newest first: id, name, status, started on, stopped on, arms (name:share:status)."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("experiments_list"))
        return cur.fetchall()


def stop(ref: str, reason: str = "stopped by hand", day: date | None = None) -> ExperimentInfo:
    """End a running experiment: from the next publish on everyone gets the champion."""
    with db.transaction() as conn, conn.cursor() as cur:
        experiment_id = _resolve(cur, ref)
        cur.execute(queries.load("experiments_stop"), (day, reason, experiment_id))
        if cur.fetchone() is None:
            cur.execute(queries.load("experiments_status"), (experiment_id,))
            name, status = cur.fetchone()
            raise NewsrecError(f"experiment {name!r} is not running (it is {status})")
        cur.execute(queries.load("experiments_end_arms"), (experiment_id,))
    return get(str(experiment_id))


def daily_metrics(experiment_id: int) -> list[tuple]:
    """Per day and arm (cohort users): active users, dwell per user, CTR, coverage, diversity."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("experiments_daily_metrics"), (experiment_id,))
        return cur.fetchall()


def decisions(experiment_id: int) -> list[tuple]:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("experiments_decisions"), (experiment_id,))
        return cur.fetchall()


def render(info: ExperimentInfo) -> str:
    """What ``newsrec experiment show`` prints."""
    cohort = (
        f"{info.cohort_size:,} users asked, share {info.cohort_share:.4f} of {info.users_at_start:,}"
        if info.cohort_size
        else "every user"
    )
    ended = f" ({info.stop_reason}{', ' + str(info.stopped_on) if info.stopped_on else ''})" if info.stop_reason else ""
    lines = [
        f"experiment {info.experiment_id} {info.name!r}: {info.status}{ended}",
        f"  salt {info.salt!r}; cohort: {cohort}; serves from {info.started_on or 'the next publish'}",
        f"  share steps {info.config.get('share_steps')}; test {json.dumps(info.config.get('test', {}))}",
        "",
        f"  {'arm':<22} {'kind':<11} {'model':<7} {'share':>6} {'step':>4}  {'status':<8} since",
    ]
    for a in info.arms:
        lines.append(
            f"  {a['arm']:<22} {a['kind']:<11} {a['model_version'] or '-':<7} {a['share']:>6.2f} {a['step']:>4}  "
            f"{a['status']:<8} {a['since'] or '-'}"
        )
    metrics = daily_metrics(info.experiment_id)
    lines += ["", "  per day (cohort users shown their list):"]
    if not metrics:
        lines.append("  (no metrics yet)")
    else:
        head = f"  {'date':<10}  {'arm':<22} {'users':>7} {'dwell/user s':>12} {'CTR':>7} {'cover':>6} {'div':>5}"
        lines.append(head)
        for day, arm, users, dwell, ctr, cover, div in metrics:
            lines.append(
                f"  {day!s:<10}  {arm:<22} {int(users):>7,} {_num(dwell, 1):>12} {_num(ctr, 4):>7} "
                f"{_num(cover, 3):>6} {_num(div, 2):>5}"
            )
    found = decisions(info.experiment_id)
    lines += ["", "  decisions:"]
    if not found:
        lines.append("  (none yet)")
    for day, arm, decision, before, after, reasons, evidence in found:
        ev = evidence or {}
        ci = ev.get("ci")
        detail = (
            f"diff {_num(ev.get('diff'), 2)} s, {float(ev.get('confidence', 0)):.1%} "
            f"{BOUNDS.get(ev.get('rule'), 'CI')} "
            f"[{_num(ci[0], 2)}, {_num(ci[1], 2)}], users {ev.get('n_challenger')}/{ev.get('n_champion')}, "
            f"days {ev.get('days')}"
            if ci
            else ""
        )
        lines.append(
            f"  {day!s:<10}  {arm:<22} {decision:<7} share {_num(before, 2)} -> {_num(after, 2)}  {detail}"
            + (f"  ({'; '.join(reasons)})" if reasons else "")
        )
    return "\n".join(lines)


BOUNDS = {"msprt": "CS", "group_sequential": "GS"}  # confidence sequence, group-sequential plan; else a CI


def _num(value: Any, digits: int) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def start_from_params(
    day: date,
    challengers: list[str],
    challenger_share: float | None = None,
    popularity_share: float = 0.0,
    cohort_size: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Start an experiment from the nightly run's params (served from the publish of ``day`` on).

    Idempotent: a re-run finds the experiment it created. A refusal (another experiment is
    running, an unknown version, bad shares) is logged and returned, never raised: the night's
    publish must not wait for a mistyped param."""
    if not challengers and not popularity_share:
        return {"started": False}
    name = name or f"{day}-" + "-".join(f"v{v}" for v in challengers or ["popularity"])
    try:
        existing = get(name)
    except TransientError:
        raise  # a lost connection is not "no such experiment"
    except NewsrecError:
        existing = None
    if existing is not None:
        return {"started": False, "experiment": name, "status": existing.status}
    try:
        info = create(name, challengers, challenger_share, popularity_share, None, cohort_size, started_on=day)
    except TransientError:
        raise
    except NewsrecError as exc:
        log.warning("experiment %s not started: %s", name, exc)
        return {"started": False, "experiment": name, "refused": str(exc)}
    return {"started": True, "experiment": info.name, "experiment_id": info.experiment_id}
