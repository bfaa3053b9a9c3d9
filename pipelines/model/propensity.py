"""Examination propensity per slate position, estimated from the logs themselves.

Readers look at the top of a list more often than at its bottom, so a logged click says "relevant
and examined". Counterfactual evaluation (:mod:`pipelines.model.counterfactual`) divides each
click by the chance its position was examined; this module estimates that chance from the
logged impressions, never from the simulator's truth (the ``sim`` schema is only read by the
benchmark that checks this estimate).

The model is the position-based click model (PBM): P(click | article a at position k) =
theta_k * gamma_a, fitted by expectation-maximisation (Chuklin et al., "Click Models for Web
Search", 2015; Wang et al., WSDM 2018) on impressions counted per (article, source, position).
What identifies theta is *intervention*: the same article shown at different positions, here
by the logging policy (whose order follows the outlet and chance, not the reader) and by the
lists of a published batch. An article seen at one position only informs gamma, not theta.

Impressions ordered by a personalised model are left out of the fit when others exist: such a
model puts an article on top for the readers it predicts will like it, so its position is
confounded with relevance (and the fit would overstate the fall-off). The estimate of day D
reads the ``propensity_days`` days up to D, is stored in ``ops.position_propensity`` (one set
of rows per day, replaced on re-run) and is normalised so that theta_0 = 1: only ratios of
propensities are identified, and only ratios matter to the estimators.

Where the data profile says positions are unknown (a MIND import), there is no estimate: the
result says so, and the evaluation falls back to the logged metric with that caveat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.jsonable import json_safe
from pipelines.warehouse import profile

METHOD = "pbm-em"
PERSONALISED = "model "  # prefix of the source of impressions a served model ordered
POSITIONS_UNKNOWN = (
    "the data profile says slate positions are unknown (positions_known = no): no examination "
    "propensity can be estimated, so there is no counterfactual metric; the logged metric is "
    "reported instead, and it is biased towards whatever the logging order put on top"
)


@dataclass
class Propensity:
    """Relative examination propensity by position (theta_0 = 1), or why there is none."""

    theta: np.ndarray | None  # index = position
    impressions: np.ndarray | None = None
    clicks: np.ndarray | None = None
    first_day: date | None = None
    last_day: date | None = None
    details: dict[str, Any] = field(default_factory=dict)
    caveat: str | None = None  # set when there is no estimate

    @property
    def available(self) -> bool:
        return self.theta is not None

    def at(self, positions: np.ndarray) -> np.ndarray:
        """Propensity of each position; positions past the estimated ones get the last one
        (the smallest), and unknown positions (-1) NaN."""
        if self.theta is None:
            raise ValueError(self.caveat or "no propensity estimate")
        pos = np.asarray(positions, dtype=np.int64)
        out = self.theta[np.clip(pos, 0, len(self.theta) - 1)].astype(np.float64)
        return np.where(pos < 0, np.nan, out)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "available": self.available,
                "method": METHOD if self.available else None,
                "theta": None if self.theta is None else [round(float(t), 5) for t in self.theta],
                "window": [self.first_day, self.last_day] if self.first_day else None,
                "details": self.details,
                "caveat": self.caveat,
            }
        )


def fit_pbm(
    cells: pd.DataFrame, *, iterations: int = 300, tol: float = 1e-5, min_impressions: int = 100
) -> tuple[np.ndarray, dict[str, Any]]:
    """theta (theta_0 = 1) of the position-based model fitted by EM (pure).

    ``cells`` has one row per (article, source, position) with ``impressions`` and ``clicks``.
    Positions with fewer than ``min_impressions`` impressions, and those after them, are cut: the
    returned array covers positions 0..K-1 with enough data (the caller extends the last one).

    Plain EM creeps towards its fixed point (at seed scale, 6 M cells of a million articles, the
    relative theta still moved 2e-3 after 300 steps, and it took ~1,000): the steps are
    accelerated by SQUAREM (Varadhan & Roland, Scand. J. Stat. 2008; the S3 step length, each
    extrapolation followed by one EM step and kept only if the likelihood does not fall below
    the cycle's start),
    which reaches the same fixed point in a few EM steps per digit. It stops when a cycle moves
    no relative theta by more than ``tol`` or after ``iterations`` EM steps."""
    cells = cells[cells["impressions"] > 0]
    per_position = cells.groupby("position")["impressions"].sum()
    enough = per_position.reindex(range(int(per_position.index.max()) + 1), fill_value=0) >= min_impressions
    n_pos = int(np.argmin(enough.to_numpy())) if not enough.all() else len(enough)
    if n_pos == 0:
        raise ValueError(f"no position has {min_impressions} logged impressions")
    em = _PbmEm(cells[cells["position"] < n_pos], n_pos)
    theta, gamma = np.full(n_pos, 0.5), em.initial_gamma()
    steps = cycles = 0
    likelihood = em.loglik(theta, gamma)
    while steps < iterations:
        cycles += 1
        theta1, gamma1 = em.step(theta, gamma)
        theta2, gamma2 = em.step(theta1, gamma1)
        steps += 2
        r = np.concatenate([theta1 - theta, gamma1 - gamma])
        v = np.concatenate([theta2 - theta1, gamma2 - gamma1]) - r
        vv = float(v @ v)
        alpha = min(-1.0, -np.sqrt(float(r @ r) / vv)) if vv > 0 else -1.0
        jump = np.clip(np.concatenate([theta, gamma]) - 2 * alpha * r + alpha**2 * v, _LOW, _HIGH)
        new_theta, new_gamma = theta2, gamma2  # two EM steps never lower the likelihood
        if alpha < -1.0 and steps < iterations:
            candidate = em.step(jump[:n_pos], jump[n_pos:])
            steps += 1
            if (value := em.loglik(*candidate)) >= likelihood:
                new_theta, new_gamma, likelihood = *candidate, value
            else:
                likelihood = em.loglik(theta2, gamma2)
        change = float(np.max(np.abs(new_theta / new_theta[0] - theta / theta[0])))
        theta, gamma = new_theta, new_gamma
        if change < tol:
            break
    # a lower position examined more than the top is noise (or a layout the model does not know): cap at 1
    info = {"iterations": steps, "cycles": cycles, "items": em.n_items, "positions": n_pos, "method": "squarem"}
    return np.minimum(theta / theta[0], 1.0), info


_LOW, _HIGH = 1e-6, 1 - 1e-6


class _PbmEm:
    """One EM step of the position-based model over counted cells, sorted by item so that the
    per-item sums are sequential (``reduceat``) rather than a scatter over a million items."""

    def __init__(self, cells: pd.DataFrame, n_pos: int) -> None:
        # items numbered in order of first appearance (groupby's ngroup(sort=False)), from one
        # integer key instead of a two-column groupby over millions of rows
        sources = _sources(cells)
        key = cells["article_id"].to_numpy(np.int64) * (len(sources.categories) + 1) + (sources.codes + 1)
        item = pd.factorize(key, sort=False)[0]
        order = np.argsort(item, kind="stable")
        item = item[order]
        self.n_pos = n_pos
        self.pos = cells["position"].to_numpy(np.int64)[order]
        self.n = cells["impressions"].to_numpy(np.float64)[order]
        self.c = np.minimum(cells["clicks"].to_numpy(np.float64)[order], self.n)
        self.not_clicked = self.n - self.c
        self.starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
        self.repeats = np.diff(np.r_[self.starts, len(item)])
        self.n_items = len(self.starts)
        self.n_by_pos = np.bincount(self.pos, weights=self.n, minlength=n_pos)
        self.n_by_item = np.add.reduceat(self.n, self.starts)

    def initial_gamma(self) -> np.ndarray:
        """Relevance = the item's click rate scaled up (examination starts at 0.5 everywhere)."""
        return np.clip(np.add.reduceat(self.c, self.starts) / self.n_by_item / 0.5, 1e-4, 1 - 1e-4)

    def step(self, theta: np.ndarray, gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, g = theta[self.pos], np.repeat(gamma, self.repeats)
        tg = t * g
        w = self.not_clicked / (1.0 - tg)  # unclicked impressions, spread over their explanations
        examined = self.c + w * (t - tg)  # E[examined] in the cell
        relevant = self.c + w * (g - tg)  # E[relevant]
        theta = np.clip(np.bincount(self.pos, weights=examined, minlength=self.n_pos) / self.n_by_pos, _LOW, _HIGH)
        gamma = np.clip(np.add.reduceat(relevant, self.starts) / self.n_by_item, _LOW, _HIGH)
        return theta, gamma

    def loglik(self, theta: np.ndarray, gamma: np.ndarray) -> float:
        p = theta[self.pos] * np.repeat(gamma, self.repeats)
        return float(self.c @ np.log(p) + self.not_clicked @ np.log1p(-p))


def _ts(d: date) -> str:
    return f"{d.isoformat()} 00:00:00+00"


def read_cells(conn: Any, first: date, last: date, *, personalised: bool = True) -> pd.DataFrame:
    """Impressions and clicks per (article, source, position) of days [first, last]; the source
    as a categorical (a few distinct values over ~6 M cells at seed scale). ``personalised``
    False leaves out the sources a served model ordered."""
    import pyarrow as pa

    bounds = {"start": _ts(first), "end": _ts(last + timedelta(days=1)), "end_reads": _ts(last + timedelta(days=2))}
    return db.read_frame(
        conn,
        queries.load("propensity_cells"),
        {**bounds, "personalised": personalised},
        {"source": pa.dictionary(pa.int32(), pa.string())},
    )


def _sources(cells: pd.DataFrame) -> pd.Categorical:
    source = cells["source"]
    return source.array if isinstance(source.dtype, pd.CategoricalDtype) else pd.Categorical(source.astype(str))


def _min_impressions(cfg: dict[str, Any]) -> int:
    return int(cfg.get("min_impressions", 100))


def estimate_from_cells(cells: pd.DataFrame, cfg: dict[str, Any] | None = None) -> Propensity:
    """The estimate from counted impressions (pure): the fit, without the personalised sources
    when the others have enough impressions."""
    cfg = params("counterfactual").get("propensity", {}) if cfg is None else cfg
    min_impressions = _min_impressions(cfg)
    if cells.empty:
        return Propensity(None, caveat="no logged impressions with a position in the window")
    sources = _sources(cells)
    personalised = np.asarray(sources.categories.astype(str).str.startswith(PERSONALISED))[sources.codes]
    used = cells[~personalised]
    excluded = "impressions ordered by a personalised model"
    if used["impressions"].sum() < min_impressions:
        used, excluded = cells, None  # only model-ordered lists: the fit is confounded, say so
    theta, info = fit_pbm(
        used,
        iterations=int(cfg.get("iterations", 300)),
        tol=float(cfg.get("tolerance", 1e-5)),
        min_impressions=min_impressions,
    )
    shown = used[used["position"] < len(theta)]
    info.update(
        sources=sorted({str(v) for v in _sources(used).unique() if pd.notna(v)}),
        excluded=excluded,
        confounded=excluded is None and bool(personalised.any()),
    )
    return Propensity(
        theta,
        np.bincount(shown["position"], weights=shown["impressions"], minlength=len(theta)).astype(np.int64),
        np.bincount(shown["position"], weights=shown["clicks"], minlength=len(theta)).astype(np.int64),
        details=info,
    )


def window(day: date, cfg: dict[str, Any] | None = None) -> tuple[date, date]:
    cfg = params("counterfactual").get("propensity", {}) if cfg is None else cfg
    return day - timedelta(days=int(cfg.get("days", 7)) - 1), day


def estimate(conn: Any, day: date, cfg: dict[str, Any] | None = None) -> Propensity:
    """The estimate of ``day`` from the logs of its window (not stored), or why there is none."""
    if not profile.load(conn).positions_known:
        return Propensity(None, caveat=POSITIONS_UNKNOWN)
    cfg = params("counterfactual").get("propensity", {}) if cfg is None else cfg
    first, last = window(day, cfg)
    # The fit leaves the model-ordered cells out whenever the others have enough impressions, so
    # they are read only when not: the same estimate, without reading, parsing and dropping the
    # cells of every published list of the window.
    cells = read_cells(conn, first, last, personalised=False)
    if cells.empty or cells["impressions"].sum() < _min_impressions(cfg):
        cells = read_cells(conn, first, last)
    result = estimate_from_cells(cells, cfg)
    result.first_day, result.last_day = first, last
    return result


def save(conn: Any, day: date, result: Propensity) -> None:
    """Replace the stored estimate of ``day`` (nothing is stored without an estimate)."""
    with conn.cursor() as cur:
        cur.execute(queries.load("propensity_delete_day"), {"day": day})
        if not result.available:
            return
        details = json.dumps(json_safe(result.details))
        for k, theta in enumerate(result.theta):
            cur.execute(
                queries.load("propensity_insert"),
                {
                    "day": day,
                    "position": k,
                    "propensity": float(theta),
                    "impressions": int(result.impressions[k]),
                    "clicks": int(result.clicks[k]),
                    "method": METHOD,
                    "first_day": result.first_day,
                    "last_day": result.last_day,
                    "details": details,
                },
            )


def load(conn: Any, day: date) -> Propensity | None:
    """The stored estimate of ``day``, or None when none is stored."""
    frame = db.read_frame(conn, queries.load("propensity_load"), {"day": day})
    if frame.empty:
        return None
    details = frame["details"].iloc[0]
    return Propensity(
        frame["propensity"].to_numpy(np.float64),
        frame["impressions"].to_numpy(np.int64),
        frame["clicks"].to_numpy(np.int64),
        pd.Timestamp(frame["first_day"].iloc[0]).date(),
        pd.Timestamp(frame["last_day"].iloc[0]).date(),
        json.loads(details) if isinstance(details, str) else dict(details),
    )


def for_day(day: date, *, refresh: bool = False) -> Propensity:
    """The estimate of ``day``: the stored one, else estimated now and stored (in one transaction)."""
    with db.transaction() as conn:
        if not profile.load(conn).positions_known:
            return Propensity(None, caveat=POSITIONS_UNKNOWN)
        stored = None if refresh else load(conn, day)
        if stored is not None:
            return stored
        result = estimate(conn, day)
        save(conn, day, result)
        return result


def for_held_out(day: date) -> Propensity:
    """The estimate a held-out (test) ``day`` is weighed with: the one of the day before, so
    that the day's own clicks never fit the propensity that weighs them. A training run of
    night D thus reads one estimate, D-1's (its validation day's too), which the night before
    stored: training never waits for the night's own propensity stage (stored, else
    estimated now and stored, as :func:`for_day`)."""
    return for_day(day - timedelta(days=1))


def render(result: Propensity) -> str:
    if not result.available:
        return f"Examination propensity: none ({result.caveat})."
    values = ", ".join(f"{k}: {t:.3f}" for k, t in enumerate(result.theta))
    note = " (confounded: only model-ordered lists were logged)" if result.details.get("confounded") else ""
    return (
        f"Examination propensity by position, estimated from the logs {result.first_day}..{result.last_day} "
        f"(position-based click model, EM{note}): {values}"
    )
