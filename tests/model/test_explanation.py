"""Score, publish, then explain one published pair through the real reader app: TreeSHAP
contributions of the live model from Feast's online features add up to the published score;
the reader warms explanations at start and says "ready" only then."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from pipelines.bench import servers
from pipelines.features import store
from pipelines.reader.app import create_app
from pipelines.reader.keys import create_key
from pipelines.reader.settings import as_reader
from pipelines.serving import explanations
from pipelines.serving.batch import score_and_publish
from tests.helpers import query, use_database
from tests.integration.test_reader import wait_until_ready
from tests.model.conftest import DAY


@pytest.fixture(scope="module")
def published(trained):
    with pytest.MonkeyPatch.context() as mp:
        from tests.helpers import use_database

        use_database(mp, trained["url"], trained["home"])
        summary = score_and_publish(DAY)
        store.materialize(DAY)
        _, key = create_key("explanations")
        pair = query(
            "SELECT r.user_id, r.article_id, r.score FROM serving.recommendations r "
            "JOIN serving.live l USING (batch_id) WHERE r.rank = 1 ORDER BY r.user_id LIMIT 1"
        )[0]
        yield {**trained, "summary": summary, "key": key, "pair": pair}


def test_explanation_adds_up_to_the_published_score(published, monkeypatch):
    from tests.helpers import use_database

    use_database(monkeypatch, published["url"], published["home"])
    user, article, score = published["pair"]
    with TestClient(create_app(database_url=as_reader(published["url"]))) as client:
        url = f"/v1/users/{user}/recommendations/{article}/explanation"
        response = client.get(url, headers={"X-API-Key": published["key"]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == published["summary"]["model_version"]
        assert body["rank"] == 1
        total = body["base_value"] + sum(c["contribution"] for c in body["contributions"])
        assert total == pytest.approx(body["score"], abs=1e-6)
        assert body["score"] == pytest.approx(score, abs=1e-4)  # the same score the batch published
        features = [c["feature"] for c in body["contributions"]]
        assert "user_cat_dwell_share_28d" in features and len(features) == len(set(features))
        assert client.get(url).status_code == 401
        missing = client.get(f"/v1/users/{user}/recommendations/1/explanation", headers={"X-API-Key": published["key"]})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        wait_until_ready(client)  # no warm-up thread of this app outlives the test


def _hold_warm_up(monkeypatch, folder: Path) -> Path:
    """The reader's warm-up waits at its checkpoint while the returned marker exists."""
    monkeypatch.setenv("NEWSREC_FAULT", "pause:reader_warmup")
    monkeypatch.setenv("NEWSREC_FAULT_DIR", str(folder))
    return folder / "reader_warmup"


def _wait_for(marker: Path, within_s: float = 120) -> None:
    deadline = time.monotonic() + within_s
    while not marker.exists():
        assert time.monotonic() < deadline, "the warm-up never reached its checkpoint"
        time.sleep(0.05)


def _released_until_ready(http, marker: Path, within_s: float = 120):
    """:func:`wait_until_ready`, releasing every worker that pauses at the checkpoint: with several
    uvicorn workers one may reach it after the test removed the first one's marker (and a kept-alive
    connection keeps asking that worker)."""
    deadline = time.monotonic() + within_s
    while True:
        marker.unlink(missing_ok=True)
        health = http.get("/v1/health")
        if health.json()["ready"]:
            return health
        assert time.monotonic() < deadline, f"the reader's warm-up did not finish: {health.text}"
        time.sleep(0.2)


def test_a_real_reader_is_starting_until_explanations_are_warm(published, monkeypatch, tmp_path):
    use_database(monkeypatch, published["url"], published["home"])
    marker = _hold_warm_up(monkeypatch, tmp_path)
    user, article, _ = published["pair"]
    with (
        servers.serving("reader", "/openapi.json", {}, tmp_path) as (base, _pid),
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        _wait_for(marker)
        before = http.get("/v1/health")
        assert before.status_code == 503, before.text
        body = before.json()
        assert (body["status"], body["ready"], body["explanations"]) == ("starting", False, "warming")
        assert body["database"] is True and body["live_batch_id"] is not None
        assert body["explanations_detail"] == "importing numpy, pandas, LightGBM and Feast"
        marker.unlink()
        after = _released_until_ready(http, marker)
        assert after.status_code == 200, after.text
        body = after.json()
        assert (body["status"], body["ready"], body["explanations"]) == ("ok", True, "ready")
        assert body["model_version"] == published["summary"]["model_version"]
        assert (
            body["explanations_detail"].startswith("model ")
            and "loaded, online features read" in body["explanations_detail"]
        )
        r = http.get(f"/v1/users/{user}/recommendations/{article}/explanation", headers={"X-API-Key": published["key"]})
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == published["summary"]["model_version"]


def test_the_first_explanation_after_ready_loads_no_model(published, monkeypatch, tmp_path):
    use_database(monkeypatch, published["url"], published["home"])
    marker = _hold_warm_up(monkeypatch, tmp_path)
    user, article, _ = published["pair"]
    explanations.serving_model.cache_clear()
    with TestClient(create_app(database_url=as_reader(published["url"]))) as client:
        _wait_for(marker)
        assert client.get("/v1/health").status_code == 503
        assert explanations.serving_model.cache_info().currsize == 0  # the warm-up is what loads it
        marker.unlink()
        assert wait_until_ready(client).json()["explanations"] == "ready"
        warm = explanations.serving_model.cache_info()
        assert warm.currsize == 1
        url = f"/v1/users/{user}/recommendations/{article}/explanation"
        assert client.get(url, headers={"X-API-Key": published["key"]}).status_code == 200
        served = explanations.serving_model.cache_info()
        assert (served.misses, served.hits) == (warm.misses, warm.hits + 1)  # the warm model, not a load


def test_score_drift_is_measured_against_the_batch_of_an_earlier_date(published, monkeypatch):
    from datetime import timedelta

    from pipelines.serving.batch import score, score_drift_against_previous
    from tests.helpers import use_database

    use_database(monkeypatch, published["url"], published["home"])
    again = score_and_publish(DAY, dry_run=True)
    assert again["published"] is False
    assert again["score_drift"] is None  # the only batch is DAY's own: nothing earlier to compare with
    same = score(DAY).recommendations  # same model, same features: the next day sees DAY's batch unchanged
    drift = score_drift_against_previous(DAY + timedelta(days=1), same)
    assert drift["drifted"] is False and drift["score"] < 0.01
    shifted = same.assign(score=same["score"] + 3 * same["score"].std())
    assert score_drift_against_previous(DAY + timedelta(days=1), shifted)["drifted"] is True
    assert query("SELECT count(*) FROM ops.drift_results WHERE kind = 'scores'")[0][0] >= 1
