"""A night with an experiment running, SIGKILLed while the promoter/demoter writes its
decisions: the live batch, the champion and the experiment's state stay as they were, and the
re-run decides once and publishes the arms. The crash is a real SIGKILL of a process of its
own; the re-runs after it are the same stage calls made in this process (a fresh interpreter
would only add its imports)."""

from __future__ import annotations

import signal

import pytest

from tests.helpers import query
from tests.reliability import nightly_world as nw

NIGHT = (
    "from pipelines.nightly import stages; d = '{day}'; stages.business_metrics(d); stages.decide_experiments(d); "
    "stages.score_and_publish(d)"
)


def _night(day: str) -> None:
    """NIGHT's stages, in this process."""
    from pipelines.nightly import stages

    stages.business_metrics(day)
    stages.decide_experiments(day)
    stages.score_and_publish(day)


def _experiment_state() -> dict:
    return {
        "experiments": query("SELECT experiment_id, name, status, stopped_at FROM ops.experiments ORDER BY 1"),
        "arms": query(
            "SELECT arm, kind, model_version, share, step, status, since FROM ops.experiment_arms ORDER BY arm"
        ),
        "history": query("SELECT arm, effective_from, share, reason FROM ops.experiment_share_history ORDER BY 1, 2"),
        "decisions": query("SELECT logical_date, arm, decision FROM ops.experiment_decisions ORDER BY 1, 2"),
    }


@pytest.fixture
def world(make_world, monkeypatch):
    from pipelines.experiments import lifecycle
    from pipelines.features.build import build
    from pipelines.warehouse import simulator
    from tests.helpers import use_database

    url, home = make_world("expcrash")
    use_database(monkeypatch, url, home)
    # this world is organic only: re-simulate D with the closed loop (D0's live batch shown)
    query("UPDATE sim.config SET params = jsonb_set(params, '{recommended_session_share}', '0.5')")
    assert simulator.simulate_day(nw.D).recommended > 0
    build(nw.D)
    champion = nw.registry_state()["champion"]
    lifecycle.create("crash-night", [champion], challenger_share=0.3, popularity_share=0.2)
    return {"before": nw.snapshot(), "experiment": _experiment_state(), "champion": champion}


def test_kill_while_deciding_leaves_live_batch_and_experiment_as_they_were(world, tmp_path):
    log = tmp_path / "night.log"
    proc = nw.stage(NIGHT.format(day=nw.D), {"NEWSREC_FAULT": "kill:experiment_decide_before_commit"}, log)
    code = nw.finish(proc)
    assert code == -signal.SIGKILL, log.read_text()[-3000:]
    # the metric of D was stored (its own stage, before the crash); nothing else moved
    assert query("SELECT count(*) > 0 FROM ops.business_metrics WHERE logical_date = %s", (nw.D,)) == [(True,)]
    assert _experiment_state() == world["experiment"]
    assert nw.live_is_complete()
    after = nw.snapshot()
    assert after["live"] == world["before"]["live"] and after["live_batch"] == world["before"]["live_batch"]
    assert after["registry"]["champion"] == world["champion"]

    # the re-run decides once and publishes D's batch with the experiment's arms
    _night(str(nw.D))
    state = _experiment_state()
    assert state["experiments"] == world["experiment"]["experiments"]  # still running
    assert [d[1:] for d in state["decisions"]] == [("challenger", "keep")]  # too little evidence after one day
    batch = nw.live_batch()
    assert batch[1] == nw.D and nw.live_is_complete()
    arms = dict(query("SELECT arm, count(DISTINCT user_id) FROM serving.recommendations r JOIN serving.live l "
                      "USING (batch_id) GROUP BY arm"))  # fmt: skip
    assert set(arms) == {"champion", "challenger", "popularity"}
    # and a third run of the night changes no decision
    _night(str(nw.D))
    assert _experiment_state()["decisions"] == state["decisions"]
