"""The bulk export for the e-mail sender, against the real PostgreSQL: the reader's NDJSON
route (API key, validation, keyset pages that add up to exactly the live batch, one batch per
response even across a publish) and `newsrec serve export` (jsonl byte for byte as the route,
parquet as the database, an older kept batch, one-line refusals, never a half-written file)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings
from collections.abc import Callable
from datetime import date, timedelta

import asyncpg
import numpy as np
import pytest

from pipelines.reader.app import create_app
from pipelines.reader.export_routes import BATCH_HEADER, NEXT_HEADER, ExportQueries, export_page
from pipelines.reader.keys import create_key
from pipelines.reader.settings import ReaderParams, as_reader
from pipelines.serving import publish
from tests.helpers import clone_database, query, run_cli, simulated_world, use_database
from tests.integration.test_publish import batch_frames

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

START = date(2026, 5, 4)
DAY = START + timedelta(days=1)
SIM = {"users": 120, "articles_per_day": 60, "start": START, "seed": 71}
ROUTE = "/v1/recommendations/export"
UNKNOWN_USER = 7  # in the older batch, not in the live one


@pytest.fixture(scope="module")
def export_template(pg_server, migrated_template, tmp_path_factory):
    """A seeded warehouse without batches; nobody stays connected, so tests can clone it."""
    name = "export_template"
    with simulated_world(pg_server, migrated_template, tmp_path_factory.mktemp("export_home"), name, 2, **SIM):
        return name


@pytest.fixture(scope="module")
def served(pg_server, export_template, tmp_path_factory):
    """Two complete batches: an older one kept for rollback and the live one (without
    UNKNOWN_USER), and an API key."""
    url = clone_database(pg_server, export_template, "ex")
    home = tmp_path_factory.mktemp("export_served")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, url, home)
        older = publish.publish_batch(DAY, "export-old", *batch_frames(salt=1))
        live = publish.publish_batch(DAY, "export-live", *batch_frames(salt=0, skip_users=(UNKNOWN_USER,)))
        _, key = create_key("email-sender")
        rows = {b: _batch_rows(b) for b in (older, live)}
    return {"url": url, "home": home, "older": older, "live": live, "key": key, "rows": rows}


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(database_url=as_reader(served["url"]))) as c:
        yield c


@pytest.fixture
def in_served(served, monkeypatch):
    use_database(monkeypatch, served["url"], served["home"])
    return served


def _batch_rows(batch_id: int) -> dict[int, list[tuple]]:
    """user_id -> [(rank, article_id, score, reason), ...] as serving.recommendations holds them."""
    out: dict[int, list[tuple]] = {}
    for user_id, *item in query(
        "SELECT user_id, rank, article_id, score, reason FROM serving.recommendations "
        "WHERE batch_id = %s ORDER BY user_id, rank",
        (batch_id,),
    ):
        out.setdefault(user_id, []).append(tuple(item))
    return out


def _assert_lines_are_the_batch(lines: list[dict], batch_id: int, model_version: str, expected: dict) -> None:
    users = [line["user_id"] for line in lines]
    assert users == sorted(expected), "every user of the batch exactly once, in user id order"
    for line in lines:
        assert set(line) == {"user_id", "batch_id", "model_version", "items"}
        assert line["batch_id"] == batch_id and line["model_version"] == model_version
        want = expected[line["user_id"]]
        assert [i["rank"] for i in line["items"]] == list(range(1, len(want) + 1))
        got = [(i["rank"], i["article_id"], i["reason"]) for i in line["items"]]
        assert got == [(rank, article, why) for rank, article, _, why in want]
        # Scores are stored as real: the same float32, written as its shortest decimal.
        assert [np.float32(i["score"]) for i in line["items"]] == [np.float32(s) for _, _, s, _ in want]


def _get(client, key: str | None, **params):
    return client.get(ROUTE, params=params, headers={"X-API-Key": key} if key is not None else {})


def test_export_needs_an_api_key(client, served):
    for key in (None, "", "not-a-key"):
        r = _get(client, key)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthorized"
    assert _get(client, None, limit=0).status_code == 401  # auth before validation


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": -5}, "limit"),
        ({"limit": "max"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"after_user_id": -2}, "after_user_id"),
        ({"after_user_id": 2**63}, "after_user_id"),
        ({"after_user_id": "1 OR 1=1"}, "after_user_id"),
    ],
)
def test_bad_paging_is_422(client, served, params, field):
    r = _get(client, served["key"], **params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"]["code"] == "invalid_request"
    assert [f["field"] for f in body["error"]["fields"]] == [field]
    assert "OR 1=1" not in r.text


def test_limit_above_the_maximum_is_422(client, served):
    most = ReaderParams.from_params().export_max_users
    assert _get(client, served["key"], limit=most + 1).status_code == 422
    assert _get(client, served["key"], limit=most).status_code == 200


def test_pages_add_up_to_exactly_the_live_batch(client, served):
    live, key = served["live"], served["key"]
    pages: list[bytes] = []
    after = -1
    while True:
        r = _get(client, key, after_user_id=after, limit=7)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-ndjson")
        assert r.headers[BATCH_HEADER] == str(live)
        lines = [json.loads(line) for line in r.content.splitlines()]
        assert 1 <= len(lines) <= 7 and {line["batch_id"] for line in lines} == {live}
        pages.append(r.content)
        if NEXT_HEADER not in r.headers:
            break
        assert len(lines) == 7 and int(r.headers[NEXT_HEADER]) == lines[-1]["user_id"]
        after = lines[-1]["user_id"]
    expected = served["rows"][live]
    assert len(pages) == -(-len(expected) // 7)
    everything = b"".join(pages)
    _assert_lines_are_the_batch([json.loads(x) for x in everything.splitlines()], live, "export-live", expected)
    assert UNKNOWN_USER not in {json.loads(x)["user_id"] for x in everything.splitlines()}

    whole = _get(client, key)  # the default page holds this small batch whole
    assert whole.status_code == 200 and NEXT_HEADER not in whole.headers
    assert whole.content == everything

    beyond = _get(client, key, after_user_id=max(expected))
    assert beyond.status_code == 200 and beyond.content == b"" and NEXT_HEADER not in beyond.headers

    metrics = client.get("/metrics").text
    assert 'newsrec_reader_requests_total{method="GET",route="/v1/recommendations/export",status="200"}' in metrics


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_publish_during_the_stream_does_not_mix_batches(pg_server, export_template, monkeypatch, tmp_path):
    """The page is open (the live batch read, no line yet); a publish switches the pointer
    and retires that batch (keep=1); the page's lines still come, whole, from the first batch."""
    url = clone_database(pg_server, export_template, "exmid")
    use_database(monkeypatch, url, tmp_path)
    first = publish.publish_batch(DAY, "first", *batch_frames(salt=0))
    expected = _batch_rows(first)
    second_frames = batch_frames(salt=2)
    published: list = []

    def publish_second() -> None:
        try:
            published.append(publish.publish_batch(DAY, "second", *second_frames, keep=1))
        except Exception as exc:  # reported below, on the test's thread
            published.append(exc)

    def status(batch_id: int) -> str:
        return query("SELECT status FROM serving.batches WHERE batch_id = %s", (batch_id,))[0][0]

    async def read_page() -> bytes:
        conn = await asyncpg.connect(as_reader(url))
        try:
            async with export_page(conn, ExportQueries(), -1, 10_000, fetch_rows=10) as (page, lines):
                assert page["batch_id"] == first and page["more"] is False
                switcher = threading.Thread(target=publish_second)
                switcher.start()
                await asyncio.to_thread(_wait_for, lambda: status(first) == "retired", "the publish to retire it")
                chunks = [chunk async for chunk in lines]
        finally:
            await conn.close()
        switcher.join(60)
        return b"".join(chunks)

    body = asyncio.run(read_page())
    assert len(published) == 1 and not isinstance(published[0], Exception), published
    assert query("SELECT batch_id FROM serving.live")[0][0] == published[0]
    _assert_lines_are_the_batch([json.loads(x) for x in body.splitlines()], first, "first", expected)


def test_cli_jsonl_is_byte_for_byte_the_reader_export(client, in_served, tmp_path):
    out = tmp_path / "live.jsonl"
    proc = run_cli("serve", "export", "--format", "jsonl", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    live = in_served["live"]
    assert f"live batch {live} (model export-live): {len(in_served['rows'][live])} users" in proc.stdout
    assert out.read_bytes() == _get(client, in_served["key"]).content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.jsonl"]  # no temporary file left


def test_cli_parquet_holds_the_batch_rows(in_served, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "live.parquet"
    proc = run_cli("serve", "export", "--format", "parquet", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    assert table.schema.field("score").type == pa.float32() and table.schema.field("rank").type == pa.int16()
    frame = table.to_pandas()
    assert set(frame["batch_id"]) == {in_served["live"]} and set(frame["model_version"]) == {"export-live"}
    expected = in_served["rows"][in_served["live"]]
    rows = [(u, r, a, why) for u, items in expected.items() for r, a, _, why in items]
    assert list(frame[["user_id", "rank", "article_id", "reason"]].itertuples(index=False, name=None)) == rows
    scores = [np.float32(s) for items in expected.values() for _, _, s, _ in items]
    assert frame["score"].tolist() == scores


def test_cli_exports_a_kept_older_batch(in_served, tmp_path):
    older = in_served["older"]
    out = tmp_path / "older.jsonl"
    proc = run_cli("serve", "export", "--batch-id", str(older), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"batch {older} (model export-old)")
    lines = [json.loads(x) for x in out.read_bytes().splitlines()]
    _assert_lines_are_the_batch(lines, older, "export-old", in_served["rows"][older])
    assert UNKNOWN_USER in {line["user_id"] for line in lines}


def test_cli_refuses_with_one_line_and_writes_nothing(in_served, tmp_path):
    out = tmp_path / "x.jsonl"
    for args, message in (
        (["--batch-id", "99999", "--output", str(out)], "batch 99999 does not exist"),
        (["--output", str(tmp_path / "missing" / "x.jsonl")], "cannot write"),
        (["--output", str(tmp_path)], "it is a folder"),
    ):
        proc = run_cli("serve", "export", *args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_killed_before_the_rename_leaves_the_previous_file(in_served, tmp_path):
    out = tmp_path / "x.jsonl"
    out.write_text("yesterday's export\n")
    proc = run_cli("serve", "export", "--output", str(out), env={"NEWSREC_FAULT": "kill:export_before_rename"})
    assert proc.returncode == -9, (proc.returncode, proc.stderr)
    assert out.read_text() == "yesterday's export\n"
    # A kill leaves its temporary file behind, hidden, never under the real name.
    leftovers = [p.name for p in tmp_path.iterdir() if p != out]
    assert len(leftovers) == 1 and leftovers[0].startswith(".x.jsonl.") and leftovers[0].endswith(".tmp")


def test_without_a_live_batch_both_refuse(pg_server, export_template, monkeypatch, tmp_path):
    url = clone_database(pg_server, export_template, "exnone")
    use_database(monkeypatch, url, tmp_path / "home")
    _, key = create_key("early")
    with TestClient(create_app(database_url=as_reader(url))) as c:
        r = _get(c, key)
        assert r.status_code == 503 and r.json()["error"]["code"] == "no_live_batch"
    proc = run_cli("serve", "export", "--output", str(tmp_path / "x.jsonl"))
    assert proc.returncode == 1 and "no batch is live yet" in proc.stderr
    assert not (tmp_path / "x.jsonl").exists()
