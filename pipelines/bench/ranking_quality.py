"""How good the model the night promoted is, against the simulator's truth, next to a ceiling.

The bench's world is simulated, so its ``sim`` schema knows each impression's expected dwell if
examined (the truth gain). This check scores the night's test day (the day under test, the
sample training's test split draws) with:

- the champion the cycle left in place (the model the pipeline promotes; the bench's world
  starts without one, so its first gated model);
- popularity, the evaluation's baseline (:func:`pipelines.model.evaluate.baseline_scores`);
- a **ceiling**: the same features, the same training days and LightGBM parameters, trained
  on the truth's own relevance instead of the logged labels. LambdaRank takes integer grades,
  so the truth gain is cut into :data:`GRADES` quantile grades whose gain (``label_gain``) is
  the mean truth gain of the grade, and the ceiling early-stops on that NDCG@10 of the
  validation day. It says how much of the popularity-to-oracle gap the features allow at all;
- the oracle (the truth itself: NDCG@10 1.0 by construction).

The share of the gap closed is (scorer - popularity) / (1 - popularity) on truth NDCG@10. The
bar of issue 21: at least 70%, or 90% of the ceiling's share where the ceiling is below 70%.

The truth is read here and in :mod:`pipelines.model.evaluate` only, never by a stage that decides.
This runs after the cycle, in a child process of its own (not part of the cycle's time).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from pipelines.core.errors import NewsrecError

if TYPE_CHECKING:
    import numpy as np

GRADES = 31  # grades of positive truth gain (grade 0: no gain); LightGBM's label_gain takes any length
BAR = 0.70  # share of the popularity-to-oracle gap the promoted model must close
BAR_OF_CEILING = 0.90  # ... or this share of the ceiling's, where the ceiling is below BAR


def truth_grades(gain: np.ndarray, edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer grades of truth ``gain`` (0 for no gain, 1..GRADES by quantile of the positive
    gains), the quantile ``edges`` (fitted on the first call, reused for other days) and each
    grade's mean gain (LightGBM's ``label_gain``; increasing, 0 for grade 0)."""
    import numpy as np  # the bench's driver imports this module: numpy loads in the child only

    gain = np.maximum(np.asarray(gain, dtype=np.float64), 0.0)
    positive = gain > 0
    if edges is None:
        if not positive.any():
            raise NewsrecError("the truth gives no impression a positive gain: nothing to train a ceiling on")
        edges = np.unique(np.quantile(gain[positive], np.linspace(0, 1, GRADES + 1)[1:-1]))
    grades = np.where(positive, 1 + np.searchsorted(edges, gain, side="right"), 0).astype(np.int32)
    label_gain = np.zeros(len(edges) + 2)
    for g in range(1, len(label_gain)):
        in_grade = grades == g
        label_gain[g] = gain[in_grade].mean() if in_grade.any() else np.nan
    # an empty grade (repeated quantiles) takes its lower neighbour's gain: label_gain stays monotone
    for g in range(1, len(label_gain)):
        if np.isnan(label_gain[g]):
            label_gain[g] = label_gain[g - 1]
    return grades, edges, label_gain


def share_of_gap(value: float, popularity: float, oracle: float = 1.0) -> float:
    return (value - popularity) / (oracle - popularity) if oracle > popularity else float("nan")


def bar(ceiling_share: float) -> float:
    """The share the promoted model must close: :data:`BAR`, or 90% of a ceiling below it."""
    return BAR if ceiling_share >= BAR else BAR_OF_CEILING * ceiling_share


def _fit_ceiling(splits: Any, gains: dict[str, np.ndarray]) -> tuple[Any, int, list[float]]:
    import lightgbm as lgb

    from pipelines.core import progress
    from pipelines.model import ranker

    train_grades, edges, label_gain = truth_grades(gains["train"])
    valid_grades, _, _ = truth_grades(gains["valid"], edges)
    p = ranker.lgb_params(objective="plain")
    rounds = int(p.pop("num_boost_round", 300))
    patience = int(p.pop("early_stopping_rounds", 50))
    p["label_gain"] = list(label_gain)
    categorical = list(splits.spec.categorical)
    dtrain = lgb.Dataset(splits.train.X, train_grades, group=splits.train.groups, categorical_feature=categorical)
    dvalid = lgb.Dataset(splits.valid.X, valid_grades, group=splits.valid.groups, reference=dtrain)
    with progress.bar(rounds, "training the ceiling", unit="tree") as trees:
        booster = lgb.train(p, dtrain, num_boost_round=rounds, valid_sets=[dvalid], valid_names=["valid"],
                            callbacks=[lgb.early_stopping(patience, verbose=False),
                                       progress.boosting_callback(trees)])  # fmt: skip
    return booster, int(booster.best_iteration), list(label_gain)


def measure(day: str, train_days: int) -> dict[str, Any]:
    """Truth NDCG@10 of the champion, popularity, the ceiling and the oracle on ``day``'s test
    sample, with the shares of the popularity-to-oracle gap (child of the nightly bench)."""
    import numpy as np

    from pipelines.model import dataset, evaluate, registry
    from pipelines.model.ranking_metrics import truth_ndcg

    night = date.fromisoformat(day)
    version = registry.champion_version()
    if version is None:
        raise NewsrecError("no champion after the cycle: the night's training promoted nothing to measure")
    champion = registry.load(version)
    splits = dataset.load_splits(night, train_days, spec=champion.spec)
    gains = {}
    for name in ("train", "valid", "test"):
        gain = evaluate.oracle_scores(getattr(splits, name))
        if gain is None:
            raise NewsrecError(f"no simulator truth for every {name} impression: the check needs a simulated world")
        gains[name] = gain
    test = splits.test
    groups, ties = evaluate.group_ids(test.rows), evaluate.tiebreak(test.rows)
    ceiling, ceiling_trees, label_gain = _fit_ceiling(splits, gains)
    scorers = {
        "model": np.asarray(champion.predict(test.X), dtype=np.float64),
        "popularity": evaluate.baseline_scores(test)["popularity"],
        "ceiling": ceiling.predict(test.X, num_iteration=ceiling_trees),
        "oracle": gains["test"],
    }
    truth = {name: truth_ndcg(groups, gains["test"], scores, ties) for name, scores in scorers.items()}
    logged = {name: evaluate.ndcg_at_10(test, scores) for name, scores in scorers.items()}
    shares = {name: share_of_gap(truth[name], truth["popularity"], truth["oracle"]) for name in truth}
    need = bar(shares["ceiling"])
    return {
        "day": day,
        "model_version": version,
        "model_trees": int(champion.booster.num_trees()),
        "ceiling_trees": ceiling_trees,
        "ceiling_grades": len(label_gain) - 1,
        "test_rows": len(test.y),
        "test_lists": int(groups.max() + 1),
        "truth_ndcg@10": truth,
        "logged_ndcg@10": logged,
        "gap_closed": shares,
        "bar": need,
        "passed": bool(shares["model"] >= need),
    }


def render(q: dict[str, Any]) -> list[str]:
    """The ranking-quality section of nightly.md."""
    lines = [
        "## Ranking quality against the simulator's truth",
        "",
        f"Test day {q['day']}: {q['test_lists']:,} lists, {q['test_rows']:,} impressions (training's test sample). "
        f"Model: the champion after the cycle, version {q['model_version']}. Ceiling: the same features and "
        f"training days trained on the truth's relevance ({q['ceiling_grades']} grades, {q['ceiling_trees']} trees).",
        "",
        "| scorer | truth NDCG@10 | logged NDCG@10 | popularity-to-oracle gap closed |",
        "|---|---:|---:|---:|",
    ]
    for name in ("popularity", "model", "ceiling", "oracle"):
        lines.append(
            f"| {name} | {q['truth_ndcg@10'][name]:.4f} | {q['logged_ndcg@10'][name]:.4f} "
            f"| {q['gap_closed'][name]:.1%} |"
        )
    verdict = "passes" if q["passed"] else "FAILS"
    lines += [
        "",
        f"The promoted model closes **{q['gap_closed']['model']:.1%}** of the gap, the ceiling "
        f"{q['gap_closed']['ceiling']:.1%}; the bar is {q['bar']:.1%} (70%, or 90% of a ceiling below 70%): "
        f"**{verdict}**.",
    ]
    return lines
