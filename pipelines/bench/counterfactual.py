"""``newsrec bench counterfactual``: does the counterfactual metric rank models as the truth does?

Across simulated worlds (position bias 0.5, 1, 2; closed loop on and off; see
:mod:`pipelines.bench.counterfactual_world`) a set of models is scored on the held-out day by

- the truth: NDCG@10 whose gain is the simulator's latent relevance x expected dwell (``sim``,
  read here to check the estimators, never by them);
- the logged metric: NDCG@10 on the logged, position-biased labels (what the gate reads today);
- the counterfactual metric: IPS NDCG@10 with the propensity estimated from the logs
  (:mod:`pipelines.model.propensity`, :mod:`pipelines.model.counterfactual`);
- as a diagnostic, the same IPS with the simulator's true propensity (it separates the error of
  the propensity estimate from the estimator's).

Each metric's ranking of the models is compared with the truth's by Kendall's tau. Models:
plain and debiased LambdaRank trained for the held-out day, a deliberately weak one (two
stumps), the champion (trained four days earlier; in the closed loop its lists shaped the
logs), and the popularity and recency baselines.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.bench import counterfactual_world as worlds
from pipelines.bench import stamp

BIASES = (0.5, 1.0, 2.0)
METRICS = ("logged", "ips", "ips_true_propensity")


@dataclass
class WorldResult:
    spec: worlds.WorldSpec
    models: dict[str, dict[str, Any]]
    tau: dict[str, float]
    propensity: dict[str, Any]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "world": self.spec.label,
            "position_bias": self.spec.position_bias,
            "closed_loop": self.spec.closed_loop,
            "users": self.spec.users,
            "articles_per_day": self.spec.articles_per_day,
            "models": self.models,
            "kendall_tau": self.tau,
            "propensity": self.propensity,
            "seconds": round(self.seconds, 1),
            **self.details,
        }


def kendall_tau(values: dict[str, float], truth: dict[str, float]) -> float:
    from scipy.stats import kendalltau

    names = sorted(truth)
    return float(kendalltau([values[n] for n in names], [truth[n] for n in names]).statistic)


def _scorers(built: dict[str, Any]) -> tuple[Any, dict[str, np.ndarray]]:
    from pipelines.features.matrix import to_matrix
    from pipelines.model import dataset, evaluate, ranker

    splits = dataset.load_splits(worlds.HELD_OUT, train_days=2)
    test = splits.test
    # the models only need to differ: they stop on the logged metric (metric=None) as when
    # counterfactual.md was measured; what the table checks is the estimators, not the models
    scorers = {
        "plain": ranker.fit(splits.train, splits.valid, splits.spec, objective="plain", metric=None).predict(test.X),
        "debiased": ranker.fit(splits.train, splits.valid, splits.spec, objective="debiased", metric=None).predict(
            test.X
        ),  # fmt: skip
        "weak": ranker.fit(splits.train, splits.valid, splits.spec, {"num_leaves": 2}, rounds=2, metric=None).predict(
            test.X
        ),  # fmt: skip
        "champion": built["champion"].predict(to_matrix(test.rows, built["champion_spec"])),
    }
    baselines = evaluate.baseline_scores(test)
    scorers.update(popularity=baselines["popularity"], recency=baselines["recency"])
    return test, {name: np.asarray(s, dtype=np.float64) for name, s in scorers.items()}


def measure_world(spec: worlds.WorldSpec, keep: bool = False) -> WorldResult:
    """Build one world and score every model by every metric."""
    from pipelines.model import counterfactual, evaluate, propensity
    from pipelines.model.ranking_metrics import truth_ndcg

    t0 = time.perf_counter()
    with worlds.own_world(spec, keep=keep):
        built = worlds.build(spec)
        test, scorers = _scorers(built)
        estimated = propensity.for_day(worlds.HELD_OUT)
        oracle = evaluate.oracle_scores(test)
        if oracle is None:
            raise RuntimeError("the benchmark's world has no simulator truth")
        true_theta = (1.0 / (np.arange(len(estimated.theta)) + 1.0)) ** spec.position_bias
        true_prop = propensity.Propensity(true_theta, details={"source": "the simulator's truth"})
        ips = counterfactual.evaluate_split(test, scorers, estimated)
        ips_true = counterfactual.evaluate_split(test, scorers, true_prop)
        gids, ties = evaluate.group_ids(test.rows), evaluate.tiebreak(test.rows)
        models: dict[str, dict[str, Any]] = {}
        for name, scores in scorers.items():
            models[name] = {
                "truth": truth_ndcg(gids, oracle, scores, ties),
                "logged": evaluate.ndcg_at_10(test, scores),
                "ips": ips["scorers"][name]["ips_ndcg@10"],
                "ips_ci": ips["scorers"][name]["ips_ndcg@10_ci"],
                "ips_true_propensity": ips_true["scorers"][name]["ips_ndcg@10"],
            }
    truth = {n: m["truth"] for n, m in models.items()}
    tau = {metric: kendall_tau({n: m[metric] for n, m in models.items()}, truth) for metric in METRICS}
    prop = {
        "estimated": [round(float(t), 4) for t in estimated.theta],
        "true": [round(float(t), 4) for t in true_theta],
        "max_abs_error": round(float(np.max(np.abs(estimated.theta - true_theta))), 4),
        "details": estimated.details,
    }
    details = {
        "test_rows": len(test.y),
        "user_days": ips["user_days"],
        "clipped_share": ips["clipped_share"],
        "clip": ips["clip"],
        "recommended_impressions": built["recommended_impressions"],
        "build_seconds": built["seconds"],
        "score_seconds": round(time.perf_counter() - t0 - sum(built["seconds"].values()), 1),
    }
    return WorldResult(spec, models, tau, prop, time.perf_counter() - t0, details)


def render(results: list[WorldResult], command: str) -> str:
    lines = [
        "# Counterfactual evaluation vs the truth",
        "",
        f"`{command}`. Kendall's tau of each metric's ranking of the models against the truth's "
        "(NDCG@10 with the simulator's latent gains); 1 = the same order.",
        "",
        "| world | models | tau logged NDCG@10 | tau IPS NDCG@10 (propensity from the logs) | "
        "tau IPS (true propensity) | propensity max error | clicks clipped | s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.spec.label} | {len(r.models)} | {r.tau['logged']:+.2f} | {r.tau['ips']:+.2f} | "
            f"{r.tau['ips_true_propensity']:+.2f} | {r.propensity['max_abs_error']:.3f} | "
            f"{r.details['clipped_share']:.1%} | {r.seconds:.0f} |"
        )
    mean = {m: float(np.mean([r.tau[m] for r in results])) for m in METRICS}
    lines += [
        f"| mean | | {mean['logged']:+.2f} | {mean['ips']:+.2f} | {mean['ips_true_propensity']:+.2f} | | | |",
        "",
    ]
    for r in results:
        lines += [
            f"## {r.spec.label} ({r.spec.users:,} users, {r.details['user_days']:,} user-days held out)",
            "",
            "Propensity from the logs: " + ", ".join(f"{t:.3f}" for t in r.propensity["estimated"]),
            "",
            "Propensity (truth): " + ", ".join(f"{t:.3f}" for t in r.propensity["true"]),
            "",
            "| model | truth NDCG@10 | logged NDCG@10 | IPS NDCG@10 [95% CI] | IPS, true propensity |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, m in sorted(r.models.items(), key=lambda kv: -kv[1]["truth"]):
            lo, hi = m["ips_ci"]
            lines.append(
                f"| {name} | {m['truth']:.4f} | {m['logged']:.4f} | {m['ips']:.4f} [{lo:.4f}, {hi:.4f}] | "
                f"{m['ips_true_propensity']:.4f} |"
            )
        lines.append("")
    return "\n".join(lines)


def run(
    results_dir: Path,
    biases: tuple[float, ...] = BIASES,
    loops: tuple[bool, ...] = (False, True),
    users: int = 1500,
    articles_per_day: int = 300,
    keep: bool = False,
    say: Any = print,
) -> list[WorldResult]:
    results = []
    for closed_loop in loops:
        for bias in biases:
            spec = worlds.WorldSpec(bias, closed_loop, users, articles_per_day)
            say(f"world {spec.label} ...")
            results.append(measure_world(spec, keep))
            r = results[-1]
            say(
                f"  tau {r.tau}; {r.seconds:.0f} s: {r.details['build_seconds']}, "
                f"scoring {r.details['score_seconds']} s"
            )
    loop = "both" if len(set(loops)) == 2 else ("on" if loops[0] else "off")
    bias_flags = " ".join(f"--bias {b:g}" for b in biases)
    command = f"newsrec bench counterfactual {bias_flags} --loop {loop} --users {users} --articles {articles_per_day}"
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "worlds": [r.to_dict() for r in results], **stamp.measured()}
    (results_dir / "counterfactual.json").write_text(json.dumps(payload, indent=2, default=str))
    (results_dir / "counterfactual.md").write_text(render(results, command) + "\n")
    return results
