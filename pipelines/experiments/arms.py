"""Who sees which arm: the serving plan of the running experiment and its stable assignment.

Assignment is a keyed hash, never stored per user: ``unit_hash(user_id, key)`` maps a user id
and a text key to a number uniform in [0, 1) with two rounds of the splitmix64 finaliser on
uint64 (vectorised numpy; Python's ``hash()`` is salted per process and would change on every
run). Two independent hashes are used:

* the cohort: a user belongs to the experiment's cohort when
  ``unit_hash(user_id, salt + "/cohort") < cohort_share``. ``cohort_share`` is fixed when the
  experiment is created (``cohort_size`` / the users known then, e.g. 15,000 pilot users), so
  membership never changes afterwards and new users join the cohort with the same chance;
* the arm: inside the cohort, ``unit_hash(user_id, salt + "/arm")`` falls in one arm's interval.
  The non-champion arms take consecutive intervals from 0 in their position order, the
  champion takes the rest. Users outside the cohort get the champion.

The same user gets the same arm on every day and in every re-run, as long as the shares stay
the same; a share step moves the interval boundaries (that is why the decision evidence of an
arm restarts at each step, see :mod:`pipelines.experiments.decide`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.hashing import unit_hash

CHAMPION = "champion"
KINDS = ("champion", "challenger", "popularity")


@dataclass(frozen=True)
class Arm:
    name: str  # e.g. "champion", "challenger", "popularity"
    kind: str  # "champion" | "challenger" | "popularity"
    model_version: str | None  # registry version for challengers; None for champion and popularity
    share: float  # share of the cohort's users


@dataclass(frozen=True)
class ServingPlan:
    experiment_id: int
    name: str
    salt: str
    arms: tuple[Arm, ...]
    cohort_share: float = 1.0  # users whose cohort hash is below this are in the experiment

    def in_cohort(self, user_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(user_ids, dtype=np.int64)
        if self.cohort_share >= 1.0:
            return np.ones(len(ids), dtype=bool)
        return unit_hash(ids, f"{self.salt}/cohort") < self.cohort_share

    def assign(self, user_ids: np.ndarray) -> np.ndarray:
        """Arm name (object array) per user; users outside the cohort get "champion"."""
        ids = np.asarray(user_ids, dtype=np.int64)
        out = np.full(len(ids), CHAMPION, dtype=object)
        inside = self.in_cohort(ids)
        u = unit_hash(ids, f"{self.salt}/arm")
        lo = 0.0
        for arm in self.arms:
            if arm.kind == "champion" or arm.share <= 0:
                continue
            hit = inside & (u >= lo) & (u < lo + arm.share)
            out[hit] = arm.name
            lo += arm.share
        return out

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)


def serving_plan(day: date) -> ServingPlan | None:
    """The experiment running for the publish of ``day``, None if none (everyone: champion).

    An experiment serves from its ``started_on`` date on (or from the next publish when it has
    none) until it is stopped, promoted or demoted; arms with share 0 (demoted) are left out.
    """

    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            queries.load("experiments_running_as_of"),
            (day,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute(
            queries.load("experiments_serving_arms"),
            (row[0],),
        )
        arms = tuple(Arm(name, kind, version, float(share)) for name, kind, version, share in cur.fetchall())
    return ServingPlan(int(row[0]), row[1], row[2], arms, float(row[3]))
