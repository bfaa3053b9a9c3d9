"""Score, publish, then explain one published pair through the real reader app: TreeSHAP
contributions of the live model from Feast's online features add up to the published score."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from pipelines.features import store
from pipelines.reader.app import create_app
from pipelines.reader.keys import create_key
from pipelines.reader.settings import as_reader
from pipelines.serving.batch import score_and_publish
from tests.helpers import query
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
