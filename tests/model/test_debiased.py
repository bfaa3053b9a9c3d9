"""Position-debiased LambdaRank against the simulator's truth, on a small world whose readers
strongly favour the top of the slate (examination = (1/(position+1))**2).

Real PostgreSQL, Feast, LightGBM and MLflow; fixed seeds."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from pipelines.core.config import params
from pipelines.features.matrix import MatrixSpec
from pipelines.model import registry
from pipelines.model.objectives import compare_objectives, render_comparison
from pipelines.model.train import train
from tests.helpers import simulated_world

START = date(2026, 8, 3)
DAY = START + timedelta(days=5)  # test day; valid = DAY-1; train = DAY-4..DAY-2
TRAIN_DAYS = 3


@pytest.fixture(scope="module")
def biased_world(pg_server, migrated_template, tmp_path_factory):
    home = tmp_path_factory.mktemp("debiased_home")
    days = [START + timedelta(days=i) for i in range(6)]
    sim = {"users": 1500, "articles_per_day": 400, "start": START, "seed": 3, "position_bias": 2.0}
    with simulated_world(pg_server, migrated_template, home, "debiased_world", 6, days, **sim) as world:
        yield world


def test_debiased_model_is_at_least_as_good_as_plain_against_the_truth(biased_world):
    result = compare_objectives(DAY, train_days=TRAIN_DAYS)
    print(render_comparison(result))
    plain, debiased = result["scorers"]["plain"], result["scorers"]["debiased"]
    assert result["stopped_on"] == "ips_ndcg@10"  # as the nightly's training stops
    assert result["scorers"]["oracle"]["truth_ndcg@10"] == pytest.approx(1.0)
    assert debiased["truth_ndcg@10"] >= plain["truth_ndcg@10"]
    assert debiased["truth_gap_closed"] >= plain["truth_gap_closed"] > 0
    # the logged labels are position-biased: they cannot tell the two apart as the truth can
    assert plain["logged_ndcg@10"] > result["scorers"]["popularity"]["logged_ndcg@10"]


def test_debiased_training_is_registered_and_scores_without_positions(biased_world):
    result = train(DAY, trials=1, minutes=1, train_days=TRAIN_DAYS, objective="debiased")
    tags = registry.version_info(result.version)["tags"]
    assert (tags["objective"], tags["training_mode"]) == ("debiased", "full")
    assert "truth" in result.evaluation and result.evaluation["truth_gap_closed"] > 0
    spec = MatrixSpec.from_dict(json.loads(tags["matrix_spec"]))
    assert "position" not in spec.feature_names
    assert registry.load(result.version).booster.num_feature() == len(spec.feature_names)


def test_plain_vs_debiased_is_chosen_by_the_paired_rule_and_recorded(biased_world):
    """training.objective auto: the champion's objective (debiased, the test above) is searched
    (its study is resumed, not run again), plain is fitted with those parameters, and plain is
    kept only when it beats debiased by the margin at the lower bound of the paired bootstrap on
    the validation day; the version's tags and the run's record say which and why."""
    from tests.helpers import query

    assert registry.version_info("champion")["tags"]["objective"] == "debiased"
    result = train(DAY, trials=1, minutes=1, train_days=TRAIN_DAYS)
    print(result.note, result.decision.render(), sep="\n")
    tags = registry.version_info(result.version)["tags"]
    assert tags["objective_choice"] == "rule" and tags["validation_metric"] == "ips_ndcg@10"
    assert tags["objective"] == result.objective
    assert "plain vs debiased on the validation day: ips_ndcg@10 difference" in tags["objective_note"]
    ((details,),) = query("SELECT details FROM ops.runs WHERE stage = 'train' ORDER BY run_id DESC LIMIT 1")
    comparison = details["objective_comparison"]
    assert comparison["metric"] == "ips_ndcg@10" and comparison["resamples"] > 0
    assert comparison["lower"] <= comparison["difference"] <= comparison["upper"]
    clears = comparison["lower"] >= params("promotion")["margin"]
    assert result.objective == ("plain" if clears else "debiased")
    assert details["objective_choice"] == "rule" and details["objective"] == result.objective
    assert result.note == tags["objective_note"]
    # the run keeps the unbiased test-day estimate beside the logged one (the report charts both)
    assert 0 < details["ips_ndcg"] <= 1 and 0 < details["ndcg"] <= 1


def test_a_large_training_split_compares_the_objectives_on_a_sample_and_fits_the_kept_one_on_all(
    biased_world, monkeypatch, tmp_path
):
    """Above training.auto.choice_groups training groups, plain and debiased are both fitted on
    the same seeded sample of that many groups and compared by the paired rule; only the one kept
    is fitted again on every group, and that fit is the version registered."""
    import yaml

    from pipelines.core.config import PROJECT_ROOT, reset_caches
    from pipelines.model import ranker

    data = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    data["training"]["auto"] = {"choice_groups": 200}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("NEWSREC_PARAMS_FILE", str(tmp_path / "params.yaml"))
    reset_caches()
    fits, real_fit = [], ranker.fit

    def counted(train_split, *args, **kwargs):
        booster = real_fit(train_split, *args, **kwargs)
        fits.append((args[3] if len(args) > 3 else kwargs.get("objective"), train_split.n_groups, booster))
        return booster

    monkeypatch.setattr(ranker, "fit", counted)
    try:
        result = train(DAY, trials=0, minutes=1, train_days=2)  # a window of its own: no version to reuse
    finally:
        reset_caches()
    (o1, n1, _), (o2, n2, _), (kept, n_all, final) = fits
    assert {o1, o2} == {"plain", "debiased"} and n1 == n2 == 200 < n_all
    assert kept == result.objective
    assert f"both fitted on 200 of the {n_all:,} training groups" in result.note
    registered = registry.load(result.version).booster
    assert registered.model_to_string() == final.model_to_string()


def test_positions_unknown_train_plain_and_say_why(biased_world):
    """A profile without known positions (MIND) switches the debiased objective off: the run
    trains plain LambdaRank, and the version, the run's record and the nightly report say why."""
    from pipelines.core import db
    from pipelines.nightly import report
    from pipelines.warehouse import profile
    from tests.helpers import query

    before = profile.current()
    with db.transaction() as conn:
        profile.save(conn, before.with_parts(source="no positions", positions_known=False), set_by="a test")
    try:
        result = train(DAY, trials=1, minutes=1, train_days=1, objective="debiased")
        sections = {s.title: s for s in report.collect(DAY)}
    finally:
        with db.transaction() as conn:
            profile.save(conn, before)
    assert result.objective == "plain" and "positions are unknown" in result.note
    tags = registry.version_info(result.version)["tags"]
    assert (tags["objective"], tags["objective_requested"]) == ("plain", "debiased")
    assert "positions are unknown" in tags["objective_note"] and tags["data_profile"].endswith("positions unknown")
    ((details,),) = query("SELECT details FROM ops.runs WHERE stage = 'train' ORDER BY run_id DESC LIMIT 1")
    assert details["objective"] == "plain" and "positions are unknown" in details["objective_note"]
    assert "positions are unknown" in sections["Training"].note
    assert sections["Data profile"].rows == [["no positions: positions unknown"]]
