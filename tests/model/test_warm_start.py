"""Warm start on the trained world of the model tests: the retrain checker picks it only when
nothing calls for a full retrain, and warm training continues the champion's trees with its
parameters, is registered as such and goes through the same promotion gate.

Real PostgreSQL, Feast, LightGBM and MLflow; the feature-set change is the one stand-in: the
feature code's current names are patched to include a feature the champion never saw."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from pipelines.core.config import PROJECT_ROOT, reset_caches
from pipelines.features import matrix
from pipelines.gates import retrain
from pipelines.model import registry
from pipelines.model.ranker import lgb_params
from pipelines.model.registry import registered_params
from pipelines.nightly import stages
from pipelines.nightly.report import write_nightly_report
from tests.helpers import query, use_database
from tests.model.conftest import DAY

NEXT = DAY + timedelta(days=1)  # has labels; features of DAY exist


def _params(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, section: str, **changes) -> None:
    """A params.yaml that differs from the project's in ``section`` only."""
    data = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    data[section].update(changes)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("NEWSREC_PARAMS_FILE", str(path))
    reset_caches()


def test_warm_start_is_chosen_only_when_its_conditions_hold(world, monkeypatch, tmp_path):
    champion = registry.champion_version()
    warm = retrain.decide(NEXT)
    assert (warm.retrain, warm.mode, warm.champion) == (True, "warm", champion)
    assert warm.reasons == [f"warm start from champion {champion}: fresh, no drift, no decay, same features"]
    assert retrain.recorded_mode(NEXT) == "warm"

    full = {
        "drift": retrain.decide(NEXT, drift_share=0.9),
        "force": retrain.decide(NEXT, force=True),
        "age": retrain.decide(DAY + timedelta(days=30)),
    }
    _params(monkeypatch, tmp_path, "retrain", decay_margin=-1.0)  # any NDCG@10 "decayed" by more than -1
    full["decay"] = retrain.decide(NEXT)
    monkeypatch.undo()
    use_database(monkeypatch, world["url"], world["home"])  # undo() dropped the world's environment too
    with monkeypatch.context() as mp:
        # retrain imports the name: patch it where it is looked up
        mp.setattr(retrain, "current_feature_names", lambda *_: (*matrix.PASSTHROUGH, "user_new_feature"))
        full["signature"] = retrain.decide(NEXT)
    expected = {"drift": "feature drift", "force": "forced", "age": "days old", "decay": "decayed",
                "signature": "feature set changed"}  # fmt: skip
    for why, decision in full.items():
        assert (decision.retrain, decision.mode) == (True, "full"), why
        assert any(expected[why] in r for r in decision.reasons), (why, decision.reasons)
    assert retrain.recorded_mode(NEXT) == "full"  # the last decision of the date counts

    _params(monkeypatch, tmp_path, "retrain", warm_start=False)
    kept = retrain.decide(NEXT)
    assert (kept.retrain, kept.mode) == (False, "none")


def test_warm_training_continues_the_champion_through_the_gate(world):
    champion = registry.load("champion")
    retrain.decide(NEXT)  # records mode 'warm' for the date; the train task reads it back
    try:
        out = stages.train(NEXT, trials=1, minutes=1)
        assert (out["mode"], out["warm_from"]) == ("warm", champion.version)
        version = out["version"]
        tags = registry.version_info(version)["tags"]
        assert (tags["training_mode"], tags["warm_from"]) == ("warm", champion.version)
        assert tags["objective"] == champion.tags.get("objective", "plain")
        # only the day the champion has not seen (it trained on DAY-3..DAY-2 and stopped early on DAY-1)
        assert tags["data_window"] == f"{DAY - timedelta(days=1)}..{DAY - timedelta(days=1)}"
        warm = registry.load(version)
        assert warm.booster.num_trees() > champion.booster.num_trees()
        base = lgb_params()
        assert (
            registered_params(version, base)["learning_rate"]
            == registered_params(champion.version, base)["learning_rate"]
        )
        gate = query("SELECT kind, challenger_version, champion_version FROM ops.model_decisions "
                     "WHERE logical_date = %s", (NEXT,))  # fmt: skip
        assert ("promotion", version, champion.version) in gate
        again = stages.train(NEXT, trials=1, minutes=1)  # a re-run reuses the registered warm version
        assert again["version"] == version

        report = write_nightly_report(NEXT).read_text()
        training = report.split("## Training", 1)[1].split("##", 1)[0]
        assert "| warm |" in training and f"| {champion.version} |" in training
        assert "## Retrain checker" in report and "warm start from champion" in report
    finally:
        if registry.champion_version() != champion.version:  # leave the shared world's champion as it was
            registry.rollback()
        assert registry.champion_version() == champion.version
