"""The REST reader against the real PostgreSQL, through the read-only role: lists, fallback,
validation, API keys, health, metrics, docs, the role's privileges, a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, timedelta

import asyncpg
import httpx
import psycopg2
import pytest
from psycopg2 import errors

from pipelines.core.sql import load
from pipelines.reader.app import create_app
from pipelines.reader.keys import create_key, revoke_key
from pipelines.reader.lender import ConnectionLender
from pipelines.reader.queries import ListReads
from pipelines.reader.schemas import Item, RecommendationsOut
from pipelines.reader.settings import as_reader
from pipelines.serving import publish
from tests.helpers import ROOT, clone_database, query, run_cli, simulated_world, use_database
from tests.integration.test_publish import batch_frames

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient; httpx still works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

START = date(2026, 3, 2)
DAY = START + timedelta(days=1)
UNKNOWN_USER = 7  # left out of the published batch
PATH = "/v1/users/{}/recommendations"


@pytest.fixture(scope="module")
def reader_template(pg_server, migrated_template, tmp_path_factory):
    """A seeded warehouse without batches; nobody stays connected, so tests can clone it."""
    name = "reader_template"
    sim = {"users": 120, "articles_per_day": 60, "start": START, "seed": 51}
    with simulated_world(pg_server, migrated_template, tmp_path_factory.mktemp("reader_home"), name, 2, **sim):
        return name


@pytest.fixture(scope="module")
def served(pg_server, reader_template, tmp_path_factory):
    """A database with one live batch (all users but UNKNOWN_USER) and an API key."""
    url = clone_database(pg_server, reader_template, "rd")
    home = tmp_path_factory.mktemp("reader_served")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, url, home)
        recs, fallback = batch_frames(skip_users=(UNKNOWN_USER,))
        batch = publish.publish_batch(DAY, "reader-test", recs, fallback)
        key_id, key = create_key("tests")
    return {"url": url, "home": home, "batch": batch, "key": key, "key_id": key_id, "recs": recs, "fallback": fallback}


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(database_url=as_reader(served["url"]), key_cache_seconds=1.0)) as c:
        wait_until_ready(c)
        yield c


def wait_until_ready(http, within_s: float = 120):
    """Poll health until the start-up warm-up of explanations has finished; its last answer."""
    deadline = time.monotonic() + within_s
    while True:
        health = http.get("/v1/health")
        if health.json()["ready"]:
            return health
        assert time.monotonic() < deadline, f"the reader's warm-up did not finish: {health.text}"
        time.sleep(0.1)


@pytest.fixture
def in_served(served, monkeypatch):
    use_database(monkeypatch, served["url"], served["home"])
    return served


def _get(client, user, key, **params):
    return client.get(PATH.format(user), params=params, headers={"X-API-Key": key} if key else {})


def _model_body(user: int, limit: int = 10, region: str = "GLOBAL") -> bytes:
    """What the list route answered while it built its body through the response model: the
    live batch's rows (read here on their own, the score as the float8 the driver decoded)
    validated into RecommendationsOut and written by pydantic. Needs the environment on the
    reader's database."""
    ((batch_id, version, created_at),) = query(
        "SELECT b.batch_id, b.model_version, b.created_at FROM serving.live l JOIN serving.batches b USING (batch_id)"
    )
    columns = "rank, article_id, title, url, category, score::float8, reason, region"
    rows = query(
        f"SELECT {columns}, arm, model_version FROM serving.recommendations"
        " WHERE batch_id = %s AND user_id = %s AND rank <= %s ORDER BY rank",
        (batch_id, user, limit),
    )
    fallback = not rows
    if fallback:
        listed = query("SELECT region FROM serving.fallback_recommendations WHERE batch_id = %s", (batch_id,))
        lists = {r for (r,) in listed}
        rows = query(
            f"SELECT {columns}, NULL, NULL FROM serving.fallback_recommendations"
            " WHERE batch_id = %s AND region = %s AND rank <= %s ORDER BY rank",
            (batch_id, region if region in lists else "GLOBAL", limit),
        )
    head = rows[0] if rows else None
    names = ("rank", "article_id", "title", "url", "category", "score", "reason")
    return (
        RecommendationsOut(
            user_id=user,
            batch_id=batch_id,
            model_version=(head and head[9]) or version,
            generated_at=created_at.astimezone(UTC),  # asyncpg's timestamptz: UTC
            fallback=fallback,
            region=head[7] if head else region,
            arm=head[8] if head else None,
            items=[dict(zip(names, row[:7], strict=True)) for row in rows],
        )
        .model_dump_json()
        .encode()
    )


def _assert_body_is_the_models(response, user: int, limit: int = 10, region: str = "GLOBAL") -> None:
    """The body is the response model's JSON byte for byte, but for the form of an integral
    score: PostgreSQL writes 1.0 as ``1``, pydantic as ``1.0`` (the same JSON number)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    expected = re.sub(rb'("score":-?[0-9]+)\.0([,}])', rb"\1\2", _model_body(user, limit, region))
    assert response.content == expected
    assert json.loads(response.content) == json.loads(_model_body(user, limit, region))


def test_list_bodies_are_the_response_models_json(client, in_served):
    """The statement writes the body; it must be what the response model wrote before: the
    same keys in the same order, the same values and types, items in rank order."""
    recs = in_served["recs"]
    users = [int(u) for u in recs["user_id"].drop_duplicates().iloc[:3]]
    for user in users:
        _assert_body_is_the_models(_get(client, user, in_served["key"]), user)
    _assert_body_is_the_models(_get(client, users[0], in_served["key"], limit=3), users[0], limit=3)
    _assert_body_is_the_models(_get(client, users[0], in_served["key"], limit=100), users[0], limit=100)
    _assert_body_is_the_models(_get(client, UNKNOWN_USER, in_served["key"]), UNKNOWN_USER)
    r = _get(client, 10**12, in_served["key"], region="NA", limit=4)
    _assert_body_is_the_models(r, 10**12, limit=4, region="NA")
    # Scores of every kind of fraction went through: not only the integral ones.
    assert any(not float(i["score"]).is_integer() for i in r.json()["items"])


def test_the_schema_still_documents_the_response_model(client):
    """The route answers its JSON as it comes, but its contract stays the model's."""
    route = client.get("/openapi.json").json()["paths"][PATH.format("{user_id}")]["get"]
    ok = route["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/RecommendationsOut"}
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert list(schemas["RecommendationsOut"]["properties"]) == list(RecommendationsOut.model_fields)
    assert list(schemas["Item"]["properties"]) == list(Item.model_fields)


def test_known_user_gets_the_live_personal_list(client, served):
    user = int(served["recs"]["user_id"].iloc[0])
    r = _get(client, user, served["key"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user_id"] == user and body["batch_id"] == served["batch"]
    assert body["model_version"] == "reader-test" and body["fallback"] is False
    assert body["region"] in {"LATAM", "AFRICA", "NA"} and body["generated_at"]
    expected = served["recs"][served["recs"]["user_id"] == user].sort_values("rank")
    assert [i["article_id"] for i in body["items"]] == expected["article_id"].tolist()
    assert [i["rank"] for i in body["items"]] == list(range(1, 11))
    first = body["items"][0]
    assert set(first) == {"rank", "article_id", "title", "url", "category", "score", "reason"}
    assert first["title"] and first["url"].startswith("https://") and first["reason"] == "Because you read Tests"
    assert len(_get(client, user, served["key"], limit=3).json()["items"]) == 3
    assert len(_get(client, user, served["key"], limit=100).json()["items"]) == 10


def test_each_user_gets_the_arm_and_the_model_that_ranked_the_list(pg_server, reader_template, tmp_path):
    url = clone_database(pg_server, reader_template, "rdarm")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, url, tmp_path / "home")
        recs, fallback = batch_frames()
        users = recs["user_id"].drop_duplicates().tolist()
        arm = {u: ("challenger" if i % 3 == 0 else "champion") for i, u in enumerate(users)}
        version = {"challenger": "7", "champion": "5"}
        recs = recs.assign(arm=recs["user_id"].map(arm), model_version=recs["user_id"].map(lambda u: version[arm[u]]))
        # No AFRICA fallback list: a client asking for it gets GLOBAL's.
        publish.publish_batch(DAY, "5", recs, fallback[fallback["region"] != "AFRICA"])
        _, key = create_key("arms")
        with TestClient(create_app(database_url=as_reader(url), key_cache_seconds=1.0)) as c:
            for user in users[:9]:
                r = _get(c, int(user), key)
                body = r.json()
                assert (body["arm"], body["model_version"]) == (arm[user], version[arm[user]])
                _assert_body_is_the_models(r, int(user))
            r = _get(c, UNKNOWN_USER + 10**9, key)
            fallback_body = r.json()
            assert fallback_body["fallback"] is True and fallback_body["arm"] is None
            assert fallback_body["model_version"] == "5"  # the batch's (champion's) version
            _assert_body_is_the_models(r, UNKNOWN_USER + 10**9)
            r = _get(c, UNKNOWN_USER + 10**9, key, region="AFRICA")
            assert r.json()["region"] == "GLOBAL"
            _assert_body_is_the_models(r, UNKNOWN_USER + 10**9, region="AFRICA")


def test_unknown_user_gets_the_fallback_of_a_region_or_global(client, served):
    fb = served["fallback"]
    body = _get(client, UNKNOWN_USER, served["key"]).json()
    assert body["fallback"] is True and body["region"] == "GLOBAL"
    assert [i["article_id"] for i in body["items"]] == fb[fb["region"] == "GLOBAL"].sort_values("rank")[
        "article_id"
    ].tolist()
    body = _get(client, 10**12, served["key"], region="NA", limit=4).json()
    assert body["fallback"] is True and body["region"] == "NA" and len(body["items"]) == 4
    assert body["items"][0]["reason"] == "Popular in NA"
    # A known user keeps the personal list whatever region is asked for.
    user = int(served["recs"]["user_id"].iloc[0])
    assert _get(client, user, served["key"], region="AFRICA").json()["fallback"] is False


@pytest.mark.parametrize(
    "path, params, field",
    [
        (PATH.format(-1), {}, "user_id"),
        (PATH.format("abc"), {}, "user_id"),
        (PATH.format("1.5"), {}, "user_id"),
        (PATH.format(2**63), {}, "user_id"),
        (PATH.format("9" * 40), {}, "user_id"),
        (PATH.format(1), {"limit": 0}, "limit"),
        (PATH.format(1), {"limit": 101}, "limit"),
        (PATH.format(1), {"limit": "ten"}, "limit"),
        (PATH.format(1), {"region": "MARS"}, "region"),
        (PATH.format(1), {"region": "na' OR 1=1 --"}, "region"),
    ],
)
def test_bad_input_is_a_4xx_json_error(client, served, path, params, field):
    r = client.get(path, params=params, headers={"X-API-Key": served["key"]})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"]["code"] == "invalid_request"
    assert [f["field"] for f in body["error"]["fields"]] == [field]
    assert "OR 1=1" not in r.text and "SELECT" not in r.text and "Traceback" not in r.text


def test_unknown_routes_are_json_404(client):
    r = client.get("/v1/users/1")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.post(PATH.format(1))
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_api_keys_missing_wrong_and_revoked(client, in_served):
    user = int(in_served["recs"]["user_id"].iloc[0])
    for key in (None, "", "not-a-key", "x" * 5000, in_served["key"] + "x"):
        r = _get(client, user, key)
        assert r.status_code == 401, (key, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
    # Auth comes before validation: an anonymous client learns nothing about the input.
    assert _get(client, -1, None).status_code == 401

    key_id, key = create_key("short-lived")
    assert _get(client, user, key).status_code == 200
    revoke_key(key_id)
    time.sleep(1.2)  # the app under test caches valid keys for 1 s
    r = _get(client, user, key)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    assert _get(client, user, in_served["key"]).status_code == 200  # other keys unaffected
    stored = query("SELECT key_hash, key_prefix FROM serving.api_keys WHERE key_id = %s", (key_id,))[0]
    assert key not in stored[0] and len(stored[0]) == 64 and stored[1] == key[:6]


def test_health_metrics_and_docs_need_no_key(client, served):
    r = client.get("/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] is True
    assert body["live_batch_id"] == served["batch"] and 0 <= body["live_batch_age_s"] < 3600
    assert client.get("/openapi.json").json()["paths"].keys() >= {PATH.format("{user_id}"), "/v1/health"}
    assert client.get("/docs").status_code == 200
    _get(client, UNKNOWN_USER, served["key"])
    _get(client, "abc", served["key"])
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert (
        'newsrec_reader_requests_total{method="GET",route="/v1/users/{user_id}/recommendations",status="200"}' in text
    )
    assert 'route="/v1/users/{user_id}/recommendations",status="422"' in text
    assert "newsrec_reader_request_duration_seconds_bucket{" in text
    # both kinds start at 0 (the series exist before any list): the fallback count must have moved
    fallback = re.search(r'^newsrec_reader_lists_total\{kind="fallback"\} ([0-9.e+]+)$', text, re.M)
    assert fallback and float(fallback.group(1)) >= 1, text
    assert "/v1/users/abc" not in text  # raw paths never become label values


def test_a_failed_warm_up_keeps_serving_lists_and_says_why(client, served):
    """The live batch's model was never exported for serving: the warm-up fails, the reader
    answers lists and health (200, ready) and names the cause; explanations are a clear 503."""
    health = client.get("/v1/health")
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["status"] == "ok" and body["ready"] is True and body["explanations"] == "unavailable"
    assert body["explanations_detail"] == "model reader-test is not exported for serving"
    user, article = (int(v) for v in served["recs"][["user_id", "article_id"]].iloc[0])
    r = client.get(f"{PATH.format(user)}/{article}/explanation", headers={"X-API-Key": served["key"]})
    assert r.status_code == 503 and r.json()["error"] == {
        "code": "explanation_unavailable", "message": "model reader-test is not exported for serving"
    }  # fmt: skip
    assert _get(client, user, served["key"]).status_code == 200


def test_database_down_is_503_without_details():
    app = create_app(database_url="postgresql://newsrec_reader@127.0.0.1:1/nowhere", key_cache_seconds=0)
    with TestClient(app) as c:
        health = c.get("/v1/health")
        assert health.status_code == 503 and health.json()["database"] is False
        r = _get(c, 1, "some-key")
        assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
        assert "127.0.0.1" not in r.text and "nowhere" not in r.text and "refused" not in r.text.lower()


def test_no_live_batch_is_503(pg_server, reader_template, monkeypatch, tmp_path):
    url = clone_database(pg_server, reader_template, "rdempty")
    use_database(monkeypatch, url, tmp_path)
    _, key = create_key("empty")
    with TestClient(create_app(database_url=as_reader(url))) as c:
        wait_until_ready(c)
        assert c.get("/v1/health").json() == {
            "status": "no_live_batch", "database": True, "live_batch_id": None,
            "live_batch_age_s": None, "model_version": None, "switched_at": None,
            "ready": True, "explanations": "unavailable",
            "explanations_detail": "no live batch yet: nothing warmed",
        }  # fmt: skip
        r = _get(c, 1, key)
        assert r.status_code == 503 and r.json()["error"]["code"] == "no_live_batch"


def test_reader_role_reads_serving_only(in_served):
    conn = psycopg2.connect(as_reader(in_served["url"]))
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_user, current_setting('default_transaction_read_only')")
        assert cur.fetchone() == ("newsrec_reader", "on")
        cur.execute("SELECT count(*) FROM serving.recommendations")
        assert cur.fetchone()[0] > 0
        # Privileges, not only the read-only default: a READ WRITE transaction is refused too.
        for statement in (
            "INSERT INTO serving.api_keys (name, key_hash) VALUES ('evil', 'h')",
            "UPDATE serving.live SET batch_id = NULL",
            "DELETE FROM serving.recommendations",
            "DELETE FROM serving.batches",
            "UPDATE serving.fallback_recommendations SET score = 0",
            "TRUNCATE serving.api_keys",
        ):
            cur.execute("BEGIN READ WRITE")
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute(statement)
            cur.execute("ROLLBACK")
        with pytest.raises(errors.ReadOnlySqlTransaction):
            cur.execute("UPDATE serving.live SET batch_id = NULL")
        for table in ("warehouse.users", "warehouse.events", "ops.runs", "sim.user_taste"):
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute(f"SELECT 1 FROM {table} LIMIT 1")
        cur.execute("BEGIN READ WRITE")
        with pytest.raises(errors.InsufficientPrivilege):
            cur.execute("CREATE TABLE serving.evil (x int)")
        cur.execute("ROLLBACK")
    finally:
        conn.close()
    assert query("SELECT batch_id FROM serving.live")[0][0] == in_served["batch"]


def test_reader_imports_nothing_heavy():
    code = (
        "import sys, pipelines.reader.app, pipelines.cli.reader\n"
        "heavy = ('apache_beam', 'feast', 'great_expectations', 'evidently', 'lightgbm', 'mlflow', 'airflow',"
        " 'pandas', 'pipelines.serving')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_keys_cli_create_list_revoke(client, in_served):
    proc = run_cli("reader", "keys", "create", "--name", "email-sender")
    assert proc.returncode == 0, proc.stderr
    key_line = proc.stdout.strip().splitlines()
    key_id = int(key_line[0].split()[1])
    key = key_line[-1]
    user = int(in_served["recs"]["user_id"].iloc[0])
    assert _get(client, user, key).status_code == 200
    listing = run_cli("reader", "keys", "list")
    assert listing.returncode == 0 and "email-sender" in listing.stdout and key not in listing.stdout
    assert run_cli("reader", "keys", "revoke", str(key_id)).returncode == 0
    again = run_cli("reader", "keys", "revoke", str(key_id))
    assert again.returncode == 1 and "already revoked" in again.stderr and "Traceback" not in again.stderr
    missing = run_cli("reader", "keys", "revoke", "999999")
    assert missing.returncode == 1 and "no API key with id 999999" in missing.stderr


def test_publish_and_rollback_while_reading_never_mix_batches(pg_server, reader_template, monkeypatch, tmp_path):
    url = clone_database(pg_server, reader_template, "rdlive")
    use_database(monkeypatch, url, tmp_path)
    lists = {}
    frames = [batch_frames(salt=s) for s in range(3)]
    first = publish.publish_batch(DAY, "v0", *frames[0])
    lists[first] = frames[0][0]
    _, key = create_key("load")
    user = int(frames[0][0]["user_id"].iloc[0])
    failures: list[str] = []
    seen: set[int] = set()
    stop = threading.Event()

    with TestClient(create_app(database_url=as_reader(url))) as c:

        def hammer() -> None:
            while not stop.is_set():
                r = _get(c, user, key)
                if r.status_code != 200:
                    failures.append(r.text)
                    continue
                body = r.json()
                seen.add(body["batch_id"])
                expected = lists.get(body["batch_id"])
                got = [i["article_id"] for i in body["items"]]
                if expected is None or got != expected[expected["user_id"] == user]["article_id"].tolist():
                    failures.append(f"batch {body['batch_id']}: {got}")

        reader = threading.Thread(target=hammer)
        reader.start()
        try:
            for salt in (1, 2):
                # Register the expected list before the batch can go live.
                batch_id = query("SELECT coalesce(max(batch_id), 0) + 1 FROM serving.batches")[0][0]
                lists[batch_id] = frames[salt][0]
                assert publish.publish_batch(DAY, f"v{salt}", *frames[salt], keep=2) == batch_id
                time.sleep(0.2)
            assert publish.rollback() == batch_id - 1
            time.sleep(0.2)
        finally:
            stop.set()
            reader.join(30)
        assert not failures, failures[:3]
        assert len(seen) >= 2
        assert c.get("/v1/health").json()["live_batch_id"] == batch_id - 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _serving(args: list[str], env: dict[str, str], stop_seconds: float) -> Iterator[str]:
    """``newsrec reader serve`` on a free port, once /v1/health answers 200; its base URL.
    Stopped with SIGTERM (killed after ``stop_seconds``)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "reader", "serve", "--port", str(port), *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the reader did not come up"
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_cli_serves_over_http_with_uvicorn(in_served):
    with _serving([], dict(os.environ), 20) as base:
        user = int(in_served["recs"]["user_id"].iloc[0])
        r = httpx.get(f"{base}{PATH.format(user)}", headers={"X-API-Key": in_served["key"]}, timeout=5)
        assert r.status_code == 200 and len(r.json()["items"]) == 10
        assert json.loads(httpx.get(f"{base}/openapi.json", timeout=5).text)["info"]["title"] == "newsrec reader"


def _list_requests_counted(base: str) -> float:
    """The list route's 200s in /metrics, scraped on a new connection (any worker answers)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base}/metrics", timeout=5).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "newsrec_reader_requests_total"
        and s.labels == {"method": "GET", "route": PATH.format("{user_id}"), "status": "200"}
    )


def test_requests_spread_over_two_workers_all_count_in_metrics(in_served, tmp_path):
    """``--workers 2``: each worker answers a share of the lists, and /metrics, whichever
    worker answers it, counts all of them (multiprocess mode, a fresh folder per start,
    removed at the stop)."""
    prom = tmp_path / "prom"
    prom.mkdir()
    user = int(in_served["recs"]["user_id"].iloc[0])
    statuses: list[int] = []
    with _serving(["--workers", "2"], {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(prom)}, 30) as base:
        (folder,) = prom.iterdir()  # this start's own folder

        def ask() -> None:
            for _ in range(15):  # a new connection each: the workers share the listening socket
                r = httpx.get(f"{base}{PATH.format(user)}", headers={"X-API-Key": in_served["key"]}, timeout=10)
                statuses.append(r.status_code)

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert statuses == [200] * 120
        writers = {f.stem.rsplit("_", 1)[1] for f in folder.glob("counter_*.db")}
        assert len(writers) == 2, writers  # both workers answered lists
        assert [_list_requests_counted(base) for _ in range(8)] == [120] * 8
    assert not any(prom.iterdir())  # the start's folder went with it


def _served_bodies(url: str, asks: list[tuple[int, int, str]], sql: str, max_batch: int) -> tuple[list, list[int]]:
    """``asks`` read at once through one :class:`ListReads` over a real lender; what each read
    answered (or raised) and the size of each statement sent."""
    sizes: list[int] = []

    class Counting(ConnectionLender):
        async def fetch(self, statement, *args):
            sizes.append(len(args[0]))
            return await super().fetch(statement, *args)

    async def go():
        pool = Counting(url, 4)
        try:
            reads = ListReads(sql, 1, max_batch)
            # nothing else waits: sent at once, on its own
            (alone,) = await asyncio.gather(reads.read(pool, *asks[0]), return_exceptions=True)
            together = await asyncio.gather(*(reads.read(pool, *a) for a in asks), return_exceptions=True)
            assert reads._senders == 0 and not reads._waiting
            return [alone, *together]
        finally:
            await pool.close()

    return asyncio.run(go()), sizes


def test_list_requests_that_arrive_together_share_statements_and_each_get_their_own_list(in_served):
    users = sorted(set(int(u) for u in in_served["recs"]["user_id"]))[:40] + [UNKNOWN_USER, UNKNOWN_USER]
    asks = [(u, 1 + i % 10, "NA" if i % 2 else "GLOBAL") for i, u in enumerate(users)]
    got, sizes = _served_bodies(as_reader(in_served["url"]), asks, load("reader_recommendations"), 16)
    assert sizes == [1, 16, 16, 10]
    for (user, limit, region), served in zip([asks[0], *asks], got, strict=True):
        expected = re.sub(rb'("score":-?[0-9]+)\.0([,}])', rb"\1\2", _model_body(user, limit, region))
        assert served.body == expected
        assert served.batch_id == in_served["batch"] and served.fallback == (user == UNKNOWN_USER)


def test_a_failed_list_statement_fails_each_of_its_requests_and_the_next_ones_are_sent(in_served):
    failing = "SELECT $1::bigint[], $2::int[], $3::text[], 1 / 0"
    got, sizes = _served_bodies(as_reader(in_served["url"]), [(1, 10, "GLOBAL")] * 5, failing, 2)
    assert sizes == [1, 2, 2, 1]
    assert all(isinstance(r, asyncpg.DivisionByZeroError) for r in got)
