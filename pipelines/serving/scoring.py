"""Batch scoring with the champion: candidates -> features -> matrix -> LightGBM -> top 10.

Users are scored chunk by chunk (memory stays bounded at seed scale) through the same
feature-to-matrix code as training, after the model's signature has been checked. Features
are those known at the end of day D; the request time for request-time features (article
age) is a configurable hour of D+1, when the lists are read.

When an experiment runs, each user's arm (a stable hash, see ``pipelines.experiments``)
decides which model ranks them: the champion, a challenger, or the popularity control; every
row carries its arm and model version. With a Dask address configured, partitions of users
are scored by the cluster's workers through the same function as in-process.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from pipelines.core import db
from pipelines.core.config import get_settings, params
from pipelines.core.faults import checkpoint
from pipelines.experiments.arms import serving_plan
from pipelines.features.matrix import check_signature
from pipelines.features.retrieval import OfflineFeatures
from pipelines.features.transforms import request_time
from pipelines.model import registry
from pipelines.serving.candidates import iter_candidate_arrays
from pipelines.serving.predictor import Predictor
from pipelines.serving.scoring_kernel import POPULARITY, ChunkScorer
from pipelines.warehouse import profile as data_profile

log = logging.getLogger(__name__)


def load_for_scoring(ref: str = registry.CHAMPION) -> registry.LoadedModel:
    """Load a model for scoring; refuses one whose signature differs from today's features
    under the warehouse's data profile."""
    model = registry.load(ref)
    check_signature(model.spec, data_profile.current())
    return model


@dataclass(frozen=True)
class ArmScorer:
    """Who ranks which users: an experiment arm (``arm`` None when no experiment runs) and the
    model version that ranks its users (None: the popularity control, ranked by the prior)."""

    arm: str | None
    kind: str  # champion | challenger | popularity
    model_version: str | None


def scoring_arms(day: date, model_ref: str = registry.CHAMPION) -> tuple[list[ArmScorer], Any]:
    """The arms of the publish of ``day`` and the experiment plan that assigns users to them.

    Without a running experiment (or when scoring an explicit model) one arm ranks everyone.
    Every model is loaded once here so that a signature mismatch stops the run before any
    user is scored."""
    champion = load_for_scoring(model_ref)
    plan = None
    if model_ref == registry.CHAMPION:
        plan = serving_plan(day)
    if plan is None:
        return [ArmScorer(None, "champion", champion.version)], None
    arms: list[ArmScorer] = []
    for arm in plan.arms:
        if arm.kind == "champion":
            version = champion.version
        elif arm.kind == POPULARITY:
            version = None
        else:
            version = load_for_scoring(str(arm.model_version)).version
        arms.append(ArmScorer(arm.name, arm.kind, version))
    if "champion" not in {a.arm for a in arms}:  # users outside the cohort
        arms.append(ArmScorer("champion", "champion", champion.version))
    return arms, plan


@dataclass
class PartitionResult:
    """What one partition of users produced (returned by a Dask worker or computed in-process)."""

    recommendations: pd.DataFrame
    users: int = 0
    candidates: int = 0
    predict_seconds: float = 0.0
    seconds: float = 0.0  # candidates to lists, without loading the day's features and models
    cpu_seconds: float = 0.0  # the same, process CPU time (all threads)
    users_per_arm: dict[str, int] = field(default_factory=dict)


def score_partition(
    day: date,
    arms: list[ArmScorer],
    plan: Any = None,
    part: int = 0,
    parts: int = 1,
    chunk_users: int | None = None,
    engine: str | None = None,
) -> PartitionResult:
    """Rank the candidates of one partition of the active users (all of them when ``parts`` is
    1): candidates -> matrix -> each arm's model -> top k per user (:mod:`pipelines.serving.scoring_kernel`).

    The same function runs in-process and on Dask workers; it reads only the feature
    partitions, the warehouse and the registry, and writes nothing."""
    from tqdm.auto import tqdm

    sel = params("serving").get("selection", {})
    k, cap = int(sel.get("k", 10)), int(sel.get("max_per_category", 3))
    chunk_users = int(chunk_users or params("serving").get("candidates", {}).get("chunk_users", 4_000))
    versions = sorted({a.model_version for a in arms if a.model_version})
    predictors = {v: predictor(v, engine) for v in versions}
    features = OfflineFeatures(day)
    when = request_time(day)
    out = PartitionResult(pd.DataFrame())
    parts_out: list[pd.DataFrame] = []
    label = "scoring" if parts == 1 else f"scoring {part + 1}/{parts}"
    scorer = ChunkScorer(features, when, k, cap)
    t0, c0 = time.perf_counter(), time.process_time()
    with tqdm(desc=label, unit="user", disable=None) as bar:
        for chunk in iter_candidate_arrays(day, chunk_users, part, parts):
            checkpoint("score_partition")
            done = scorer.score(chunk, arms, plan, predictors)
            for arm, n in done.users_per_arm.items():
                out.users_per_arm[arm] = out.users_per_arm.get(arm, 0) + n
            out.predict_seconds += done.predict_seconds
            parts_out.append(done.recommendations)
            out.users += done.users
            out.candidates += len(chunk)
            bar.update(done.users)
    out.recommendations = pd.concat(parts_out, ignore_index=True) if parts_out else pd.DataFrame()
    out.seconds, out.cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return out


def predictor(version: str, engine: str | None) -> Any:
    """One predictor per model version and process (a Dask worker keeps it between partitions),
    keyed by the registry's database and home too: version numbers repeat across registries."""

    return _cached_predictor(db.database_url(), str(get_settings().home), version, engine)


@functools.lru_cache(maxsize=4)
def _cached_predictor(database_url: str, home: str, version: str, engine: str | None) -> Any:

    return Predictor(registry.load(version), engine)
