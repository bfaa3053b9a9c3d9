"""THE closed-loop experiment: simulated readers decide which model wins.

One experiment, three challengers against a weak champion, in a simulated world whose readers
answer each night's published lists:

* ``better``: a ranker trained on the logged reads (the latent truth makes it better);
* ``worse``: a ranker trained on inverted labels (it puts what readers like at the bottom);
* ``copy``: the champion's own trees, registered again as a new version.

Each simulated day runs: simulate the day (sessions show the live batch) -> features ->
business metric -> promoter/demoter -> score by arm and publish. Training, drift and quality
are skipped: the models are fixed up front. Seeds are fixed; the per-arm dwell table and the
days to each decision are printed and saved as ``experiment_sim.md`` in the test's folder.

Expectation (stated, and asserted): ``worse`` is demoted and ``better`` is promoted through
the promotion gate within ``MAX_DAYS`` simulated days, by the promotion step's alpha-spending
plan; ``copy`` is never promoted (nor stepped: the canary would let it through, but the better
arm's step takes the champion's room first).
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import admin_sql, query, use_database

START = date(2026, 8, 3)
HISTORY = 6  # simulated days before the experiment (features, training data)
D0 = START + timedelta(days=HISTORY - 1)  # the models are trained for D0; the first experiment batch is D0's
MAX_DAYS = 9  # promotion must happen within this many simulated days
USERS = 3000
SIM = {"users": USERS, "articles_per_day": 400, "start": START, "seed": 21, "recommended_session_share": 0.8}
SHARE = 0.2  # each challenger's starting share (the champion keeps 0.4)


def _params_file(folder: Path) -> Path:
    """params.yaml as it is (the experiment's test and share steps included), except scoring
    with LightGBM's own predict: compiling four versions with lleaves would cost ~100 s."""
    from pipelines.core.config import PROJECT_ROOT

    data = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    data["scoring"]["engine"] = "lightgbm"
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _register(booster, spec, name: str) -> str:
    from pipelines.model import registry

    lineage = {"logical_date": D0.isoformat(), "data_window": f"{START}..{D0}", "run_name": name, "variant": name}
    return registry.register(booster, spec, {}, {"variant": name}, lineage)


def _models() -> dict[str, str]:
    """Champion (weak), better, worse and a copy of the champion, registered; champion set."""
    from pipelines.model import ranker, registry
    from pipelines.model.dataset import load_splits

    splits = load_splits(D0, train_days=3)
    better = ranker.fit(splits.train, splits.valid, splits.spec, objective="debiased")
    weak = ranker.fit(splits.train, splits.valid, splits.spec, {"num_leaves": 2, "learning_rate": 0.05},
                      objective="plain", rounds=2)  # fmt: skip
    inverted = type(splits.train)(splits.train.rows, splits.train.X, splits.train.y.max() - splits.train.y,
                                  splits.train.groups)  # fmt: skip
    worse = ranker.fit(inverted, splits.valid, splits.spec, {"learning_rate": 0.1}, objective="plain", rounds=40)
    versions = {
        "champion": _register(weak, splits.spec, "weak-champion"),
        "better": _register(better, splits.spec, "better"),
        "worse": _register(worse, splits.spec, "worse"),
    }
    versions["copy"] = _register(weak, splits.spec, "copy-of-champion")
    registry.set_champion(versions["champion"])
    return versions


@pytest.fixture(scope="module")
def sim_world(pg_server, migrated_template, tmp_path_factory):
    from pipelines.features import build
    from pipelines.warehouse import simulator

    name = f"expsim{os.getpid()}"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    home = tmp_path_factory.mktemp("expsim")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEWSREC_PARAMS_FILE", str(_params_file(home.parent)))
        use_database(mp, pg_server.format(db=name), home / "home")
        simulator.seed(simulator.SimConfig.from_params(**SIM), HISTORY)
        build.backfill(START, D0)
        yield {"versions": _models(), "home": home}
    from pipelines.core.config import reset_caches

    reset_caches()


def _night(day: date) -> dict:
    """One simulated night, in run_day's order without training, drift and quality."""
    from pipelines.features.build import build
    from pipelines.nightly import stages
    from pipelines.warehouse import simulator

    out: dict = {"simulated": simulator.simulate_day(day)}
    build(day)
    out["metrics"] = stages.business_metrics(day)
    out["decisions"] = stages.decide_experiments(day)
    out["publish"] = stages.score_and_publish(day)
    return out


def _table(experiment_id: int, arms: dict[str, str]) -> str:
    rows = query(
        "SELECT logical_date, arm, sum(active_users), sum(dwell_s) / sum(active_users), "
        "sum(reads)::float8 / sum(impressions) FROM ops.business_metrics WHERE experiment_id = %s AND in_cohort "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        (experiment_id,),
    )
    shares = dict(query("SELECT arm, share FROM ops.experiment_arms WHERE experiment_id = %s", (experiment_id,)))
    label = {v: k for k, v in arms.items()}
    by_day: dict = {}
    for day, arm, users, dwell, ctr in rows:
        by_day.setdefault(day, {})[arm] = (int(users), float(dwell), float(ctr))
    names = ["champion", "challenger-v" + arms["better"], "challenger-v" + arms["worse"], "challenger-v" + arms["copy"]]
    head = ["day"] + [f"{n} ({label.get(n.removeprefix('challenger-v'), 'champion')})" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for day, per_arm in sorted(by_day.items()):
        cells = [str(day)]
        for n in names:
            users, dwell, ctr = per_arm.get(n, (0, float("nan"), float("nan")))
            cells.append(f"{dwell:.1f} s/user, {users} users, CTR {ctr:.3f}" if users else "-")
        lines.append("| " + " | ".join(cells) + " |")
    decisions = query(
        "SELECT logical_date, arm, decision, share_before, share_after, evidence->>'diff', evidence->'ci', "
        "evidence->>'days', evidence->>'n_challenger', evidence->>'n_champion' FROM ops.experiment_decisions "
        "WHERE experiment_id = %s AND evidence->'ci' <> 'null' ORDER BY logical_date, arm",
        (experiment_id,),
    )
    lines += ["", "| decided on | arm | decision | share | diff (s/user) | 95% CI | days | users (arm/champion) |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for day, arm, decision, before, after, diff, ci, days, n_a, n_c in decisions:
        ci_text = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-"
        diff_text = f"{float(diff):+.2f}" if diff is not None else "-"
        lines.append(f"| {day} | {arm} ({label.get(arm.removeprefix('challenger-v'), '')}) | {decision} | "
                     f"{before:.2f} -> {after:.2f} | {diff_text} | {ci_text} | {days} | {n_a}/{n_c} |")  # fmt: skip
    lines += ["", f"final shares: {shares}"]
    return "\n".join(lines)


@pytest.mark.slow
def test_better_challenger_is_promoted_worse_demoted_copy_kept(sim_world, tmp_path, request):
    from pipelines.experiments import lifecycle
    from pipelines.model import registry
    from pipelines.nightly import stages

    v = sim_world["versions"]
    t0 = time.perf_counter()
    exp = lifecycle.create("sim-ab", [v["better"], v["worse"], v["copy"]], challenger_share=SHARE)
    arm_of = {k: "challenger-v" + v[k] for k in ("better", "worse", "copy")}
    stages.score_and_publish(D0)  # the first batch with the experiment's arms (shown on D0+1)
    decided: dict[str, tuple[str, int]] = {}
    day, n = D0, 0
    while n < MAX_DAYS:
        day, n = day + timedelta(days=1), n + 1
        out = _night(day)
        assert out["simulated"].recommended > 0
        for d in out["decisions"]["decisions"]:
            if d["decision"] != "keep":
                decided.setdefault(f"{d['arm']}:{d['decision']}", (str(day), n))
        if lifecycle.get("sim-ab").status != "running":
            break
    seconds = time.perf_counter() - t0
    report = _table(exp.experiment_id, v)
    days_to = "\n".join(
        f"- {k}: on {d} (simulated day {i})" for k, (d, i) in sorted(decided.items(), key=lambda x: x[1][1])
    )
    text = (f"# Closed-loop experiment ({USERS} users, seed {SIM['seed']}, {n} simulated days, {seconds:.0f} s)\n\n"
            f"versions: {v}\n\n{report}\n\ndays to each decision:\n{days_to}\n")  # fmt: skip
    print("\n" + text)
    (tmp_path / "experiment_sim.md").write_text(text)
    artifact = os.environ.get("NEWSREC_TEST_ARTIFACTS")
    if artifact:
        Path(artifact).mkdir(parents=True, exist_ok=True)
        (Path(artifact) / "experiment_sim.md").write_text(text)

    info = lifecycle.get("sim-ab")
    status = {a["arm"]: a["status"] for a in info.arms}
    assert f"{arm_of['worse']}:demote" in decided, text
    assert f"{arm_of['better']}:step" in decided, text  # 0.2 -> 0.5 before the promotion
    assert f"{arm_of['better']}:promote" in decided, text
    assert decided[f"{arm_of['better']}:promote"][1] <= MAX_DAYS
    assert info.status == "promoted" and status[arm_of["better"]] == "promoted"
    assert status[arm_of["worse"]] == "demoted"
    assert f"{arm_of['copy']}:promote" not in decided and f"{arm_of['copy']}:step" not in decided, text
    # the winner became champion through the promotion gate, recorded with its online evidence
    assert registry.champion_version() == v["better"]
    (gate,) = query("SELECT promoted, champion_version, evidence->'online'->>'arm' FROM ops.model_decisions "
                    "WHERE kind = 'experiment'")  # fmt: skip
    assert gate == (True, v["champion"], arm_of["better"])
    # the promotion was decided by the promotion step's alpha-spending plan (three challengers:
    # alpha / 3), at the boundary of its look; the step by the canary's harm-only test
    from pipelines.experiments import sequential

    evidence = dict(query("SELECT decision, evidence FROM ops.experiment_decisions WHERE experiment_id = %s "
                          "AND arm = %s AND decision IN ('step', 'promote')",
                          (exp.experiment_id, arm_of["better"])))  # fmt: skip
    won, stepped = evidence["promote"], evidence["step"]
    assert won["rule"] == "group_sequential" and stepped["rule"] == "msprt", (won, stepped)
    assert won["boundary"] == sequential.plan(exp.config["test"], 3)[won["days"]]
    assert won["ci"][0] > 0 and won["diff"] > won["boundary"] * won["var"] ** 0.5
    # the truth agrees: the better arm's users really read longer than the champion's
    dwell = dict(query("SELECT arm, sum(dwell_s) / sum(active_users) FROM ops.business_metrics "
                       "WHERE experiment_id = %s AND in_cohort GROUP BY arm", (exp.experiment_id,)))  # fmt: skip
    assert dwell[arm_of["better"]] > dwell["champion"] > dwell[arm_of["worse"]]
    # the nightly report of that night shows the decision with its evidence, and the metric
    from pipelines.nightly.report import write_nightly_report

    promoted_on = date.fromisoformat(decided[f"{arm_of['better']}:promote"][0])
    page = write_nightly_report(promoted_on).read_text()
    assert "## Experiment decisions" in page and "| promote |" in page and "## Business metric" in page
    # the experiment is over: the publish after the decision (the same night's, which follows
    # decide_experiments) serves the new champion to everyone, with no arm
    (live_day,) = query("SELECT b.data_date FROM serving.live JOIN serving.batches b USING (batch_id)")[0]
    assert live_day == promoted_on == day
    assert query("SELECT DISTINCT arm, model_version FROM serving.recommendations r JOIN serving.live l "
                 "USING (batch_id)") == [(None, v["better"])]  # fmt: skip
    assert np.isfinite(seconds)
