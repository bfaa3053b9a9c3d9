"""The promotion gate, the champion's one mover and the retrain checker's sample rule on the
trained world of tests/model/conftest.py (real Feast rows, LightGBM, MLflow, PostgreSQL).

Leaves the shared world as it found it: the champion is the trained version, with no
previous champion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import model as model_cli
from pipelines.core.config import reset_caches
from pipelines.core.errors import NewsrecError
from pipelines.gates import retrain
from pipelines.model import evaluate, promotion, registry
from pipelines.model.train import champion_comparison, load_splits
from tests.helpers import ROOT, query
from tests.model.conftest import DAY, TRAIN_DAYS, gate_a_model_fitted_on


@pytest.fixture(scope="module")
def splits(trained):
    with pytest.MonkeyPatch.context() as mp:
        from tests.helpers import use_database

        use_database(mp, trained["url"], trained["home"])
        out = load_splits(DAY, TRAIN_DAYS)
    reset_caches()
    return out


def test_the_trained_champion_passes_every_behavioural_test(world, splits):
    champion = registry.load("champion")
    tests = promotion.model_tests(champion.predict, champion.spec, splits.test.rows)
    assert all(tests["passed"].values()), tests
    assert tests["lists"] == splits.test.n_groups


def test_popularity_refuses_a_model_fitted_on_reversed_labels(world, splits):
    reversed_ = splits.train.y.max() - splits.train.y  # the least read on top
    decision, table = gate_a_model_fitted_on(splits, reversed_, "reversed", leaves=7, rounds=20)
    assert not decision.promoted
    assert {"popularity", "margin"} <= set(decision.failed), decision.reasons
    assert ("floor" in decision.failed) == (table["overall"]["model"]["ndcg@10"] < decision.evidence["floor"])


def test_margin_refuses_the_champion_as_its_own_challenger(world, splits):
    champion = registry.load("champion")
    scores = champion.predict(splits.test.X)
    table = evaluate.evaluate(splits.test, scores)
    tests = promotion.model_tests(champion.predict, champion.spec, splits.test.rows)
    decision = promotion.decide(
        champion.version, table["overall"], tests, *champion_comparison(DAY, splits.test, scores)
    )
    assert decision.failed == ["margin"], decision.reasons


def test_decay_is_measured_on_the_sample_training_registers(world, tmp_path):
    """Training's test split and the retrain checker sample a day's lists by one rule: with a
    cap below the day's lists, the checker's NDCG@10 of the champion on its own test day is the
    one training computes there (a seed-0 sample against a seed-13 one would differ)."""
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg["training"]["max_eval_groups"] = 60
    small = tmp_path / "params.yaml"
    small.write_text(yaml.safe_dump(cfg))
    version = registry.champion_version()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("NEWSREC_PARAMS_FILE", str(small))
            reset_caches()
            test = load_splits(DAY, TRAIN_DAYS).test
            model = registry.load(version)
            as_training = evaluate.ndcg_at_10(test, model.predict(test.X))
            _, measured = retrain.champion_decay(DAY, version)
    finally:
        reset_caches()
    assert test.n_groups == 60
    assert measured == pytest.approx(as_training, abs=1e-12)


def _register_copy(champion, complete: bool) -> str:
    """A new version with the champion's trees: with its lineage and evaluation, or bare."""
    if not complete:
        return registry.register(champion.booster, champion.spec, {"ndcg@10": 0.5}, {}, {"logical_date": str(DAY)})
    keep = ("logical_date", "data_window", "dvc_data_hash", "test_day", "objective", "training_mode")
    lineage = {k: champion.tags[k] for k in keep if k in champion.tags}
    metrics = registry.run_metrics(champion.run_id)
    return registry.register(champion.booster, champion.spec, {"ndcg@10": metrics["ndcg_at_10"]}, {}, lineage,
                             artifacts={"evaluation.json": {"copied_from": champion.version}})  # fmt: skip


def _decisions_after(mark: int) -> list[tuple]:
    return query(
        "SELECT kind, challenger_version, champion_version, promoted, evidence->>'override_reason' "
        "FROM ops.model_decisions WHERE decision_id > %s ORDER BY decision_id",
        (mark,),
    )


def test_manual_promotion_is_a_recorded_override_and_rollback_is_recorded(world):
    first = registry.champion_version()
    champion = registry.load(first)
    bare, complete = _register_copy(champion, False), _register_copy(champion, True)
    assert promotion.missing_parts(complete) == []
    missing = promotion.missing_parts(bare)
    assert any("DVC data hash" in m for m in missing) and any("evaluation record" in m for m in missing)
    mark = query("SELECT coalesce(max(decision_id), 0) FROM ops.model_decisions")[0][0]
    try:
        with pytest.raises(NewsrecError, match="give the reason"):
            promotion.promote_by_hand(complete, "  ")
        cli = CliRunner()
        refused = cli.invoke(model_cli.app, ["promote", bare, "--reason", "hotfix"])
        assert isinstance(refused.exception, NewsrecError)  # newsrec prints it as one line, exit 1
        assert f"version {bare} is incomplete" in str(refused.exception) and "DVC data hash" in str(refused.exception)
        assert registry.champion_version() == first and _decisions_after(mark) == []

        done = cli.invoke(model_cli.app, ["promote", complete, "--reason", "the gate's holdout day was broken"])
        assert done.exit_code == 0, done.output
        assert f"champion: {first} -> {complete} (override recorded" in done.output
        assert registry.champion_version() == complete
        assert _decisions_after(mark) == [("override", complete, first, True, "the gate's holdout day was broken")]

        assert promotion.rollback_champion(reason="test") == (complete, first)
        assert registry.champion_version() == first
        assert _decisions_after(mark)[1:] == [("rollback", first, complete, True, None)]
        with pytest.raises(NewsrecError, match="no previous champion"):
            promotion.rollback_champion()
        assert _decisions_after(mark)[2:] == [("rollback", None, first, False, None)]  # the refusal, too
        with pytest.raises(Exception, match="override_reason_check"):  # the table itself wants a reason
            promotion.record(promotion.Decision(True, complete, first, []), None, "override")
    finally:
        if registry.champion_version() != first:
            registry.rollback()
    assert registry.champion_version() == first and registry.previous_champion() is None


def test_only_the_promotion_module_moves_the_champion_alias():
    """registry.set_champion / registry.rollback move the alias without writing a decision:
    outside pipelines/model/promotion.py nothing in the product calls them."""
    callers = []
    moves = re.compile(r"registry\.(set_champion|rollback)\(|model\.registry import[^\n]*\b(set_champion|rollback)\b")
    for path in (ROOT / "pipelines").rglob("*.py"):
        if moves.search(path.read_text()):
            callers.append(str(path.relative_to(ROOT)))
    for path in (ROOT / "dags").rglob("*.py"):
        if "set_champion" in path.read_text():
            callers.append(str(Path(path).relative_to(ROOT)))
    assert callers == ["pipelines/model/promotion.py"]
