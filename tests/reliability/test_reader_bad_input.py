"""Bad input at the real reader (uvicorn on loopback, the read-only role, a published batch):
every malformed, hostile or unauthenticated request is refused with the right 4xx and a JSON
error that echoes nothing, and nothing in the database changes."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers import query, use_database
from tests.reliability.reader_world import EXPLAIN, ROUTE, UNKNOWN_USER, running_reader, served_world

SQLI = (
    "1 OR 1=1",
    "1; DROP TABLE serving.live",
    "1' OR '1'='1",
    "1) UNION SELECT key_hash FROM serving.api_keys --",
    "$1",
)


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    with served_world(pg_server, migrated_template, tmp_path_factory.mktemp("bad_input"), "rel_bad_input") as w:
        yield w


@pytest.fixture(scope="module")
def base(world, before, tmp_path_factory):
    with running_reader(tmp_path_factory.mktemp("bad_input_logs")) as url:
        yield url


@pytest.fixture(scope="module")
def http(base, startup_errors):
    with httpx.Client(base_url=base, timeout=10) as client:
        yield client


def _server_errors(metrics: str) -> dict[str, float]:
    """The reader's 5xx counts by sample line (route and status)."""
    counts = re.findall(r'^(newsrec_reader_requests_total\{.*status="5\d\d"\}) (\S+)$', metrics, re.M)
    return {line: float(n) for line, n in counts}


@pytest.fixture(scope="module")
def startup_errors(base) -> dict[str, float]:
    """5xx counted before the first test (every test's client asks for it first): the harness
    polls /v1/health until the warm-up is done, and the reader answers 503 ("starting") until
    then, by design."""
    return _server_errors(httpx.get(f"{base}/metrics", timeout=10).text)


@pytest.fixture
def in_world(world, monkeypatch):
    use_database(monkeypatch, world["url"], world["home"])
    return world


def _snapshot() -> tuple:
    return tuple(
        query(sql)[0]
        for sql in (
            "SELECT batch_id, switched_at FROM serving.live",
            "SELECT count(*), sum(article_id) FROM serving.recommendations",
            "SELECT count(*) FROM serving.fallback_recommendations",
            "SELECT count(*), count(revoked_at) FROM serving.api_keys",
            "SELECT count(*), max(batch_id) FROM serving.batches",
        )
    )


@pytest.fixture(scope="module")
def before(world):
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, world["url"], world["home"])
        return _snapshot()


def _assert_error(r: httpx.Response, status: int, code: str, *echo: str) -> None:
    assert r.status_code == status, (r.request.url, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert r.json()["error"]["code"] == code, r.text
    for text in (*echo, "Traceback", "asyncpg", "SELECT", "serving."):
        if text:
            assert text not in r.text, (text, r.text[:300])


# --------------------------------------------------------------------------------------
# API keys
# --------------------------------------------------------------------------------------

KEY_CASES = {
    "missing": None,
    "empty": "",
    "unknown": "not-a-key",
    "unknown, key-shaped": "A" * 43,
    "oversized (5,000 chars)": "x" * 5000,
    "sql injection": "' OR '1'='1",
    "sql injection, drop": "x'; DROP TABLE serving.api_keys; --",
    "sql injection, union": "' UNION SELECT key_hash FROM serving.api_keys --",
    "sql wildcard": "%",
}


@pytest.mark.parametrize("key", KEY_CASES.values(), ids=KEY_CASES.keys())
def test_missing_unknown_and_hostile_keys_are_401(http, world, key):
    headers = {} if key is None else {"X-API-Key": key}
    r = http.get(ROUTE.format(world["known_user"]), headers=headers)
    _assert_error(r, 401, "unauthorized", key if key and len(key) > 3 else "")
    assert r.headers["www-authenticate"] == "ApiKey"


def test_valid_key_plus_a_character_and_revoked_key_are_401(http, world):
    for key in (world["key"] + "x", world["key"][:-1], world["key"].upper()):
        _assert_error(http.get(ROUTE.format(world["known_user"]), headers={"X-API-Key": key}), 401, "unauthorized")
    r = http.get(ROUTE.format(world["known_user"]), headers={"X-API-Key": world["revoked"]})
    _assert_error(r, 401, "unauthorized", world["revoked"])
    assert http.get(ROUTE.format(world["known_user"]), headers={"X-API-Key": world["key"]}).status_code == 200


def test_non_ascii_key_bytes_are_401(http, world):
    for raw in ("ключ-🔑".encode(), b"\xff\xfe\x00\x01"[:2], "caf\u00e9".encode("latin-1")):
        r = http.get(ROUTE.format(world["known_user"]), headers=[(b"X-API-Key", raw)])
        _assert_error(r, 401, "unauthorized")


def test_authentication_comes_before_validation(http):
    for path in (ROUTE.format(-1), ROUTE.format("abc"), EXPLAIN.format("x", "y")):
        _assert_error(http.get(path), 401, "unauthorized")


# --------------------------------------------------------------------------------------
# Path and query
# --------------------------------------------------------------------------------------

BAD_USER_IDS = {
    "negative": "-1",
    "bigint min": str(-(2**63)),
    "bigint max + 1": str(2**63),
    "40 digits": "9" * 40,
    "float": "1.5",
    "exponent": "1e3",
    "hex": "0x10",
    "word": "abc",
    "nan": "NaN",
    "unicode snowman": "\u2603",
    "arabic-indic digits": "\u0661\u0662\u0663",
    "fullwidth digits": "\uff11\uff12",
    "emoji": "\U0001f600",
    **{f"sql injection {i}": s for i, s in enumerate(SQLI)},
}


@pytest.mark.parametrize("user_id", BAD_USER_IDS.values(), ids=BAD_USER_IDS.keys())
def test_bad_user_ids_are_422(http, world, user_id):
    r = http.get(ROUTE.format(user_id), headers={"X-API-Key": world["key"]})
    _assert_error(r, 422, "invalid_request", user_id if len(user_id) > 3 else "")
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["user_id"]


BAD_QUERIES = {
    "limit 0": ({"limit": 0}, "limit"),
    "limit negative": ({"limit": -5}, "limit"),
    "limit 101": ({"limit": 101}, "limit"),
    "limit oversized": ({"limit": 10**30}, "limit"),
    "limit 2**63": ({"limit": 2**63}, "limit"),
    "limit word": ({"limit": "ten"}, "limit"),
    "limit float": ({"limit": "2.5"}, "limit"),
    "limit empty": ({"limit": ""}, "limit"),
    "limit sql": ({"limit": "10; DELETE FROM serving.live"}, "limit"),
    "limit unicode": ({"limit": "\u0661\u0660"}, "limit"),
    "region unknown": ({"region": "MARS"}, "region"),
    "region lower case": ({"region": "na"}, "region"),
    "region sql": ({"region": "NA' OR 1=1 --"}, "region"),
    "region unicode": ({"region": "N\u00c4"}, "region"),
    "region oversized": ({"region": "N" * 10_000}, "region"),
}


@pytest.mark.parametrize("params, field", BAD_QUERIES.values(), ids=BAD_QUERIES.keys())
def test_bad_queries_are_422(http, world, params, field):
    r = http.get(ROUTE.format(world["known_user"]), params=params, headers={"X-API-Key": world["key"]})
    echoed = [str(v) for v in params.values() if len(str(v)) > 3]
    _assert_error(r, 422, "invalid_request", *echoed)
    assert [f["field"] for f in r.json()["error"]["fields"]] == [field]


def test_unknown_query_parameters_and_sql_in_them_change_nothing(http, world):
    headers = {"X-API-Key": world["key"]}
    plain = http.get(ROUTE.format(world["known_user"]), headers=headers).json()
    noisy = http.get(
        ROUTE.format(world["known_user"]),
        params={"user_id": "1 OR 1=1", "batch_id": "0", "order": "score; DROP TABLE serving.live"},
        headers=headers,
    ).json()
    assert noisy == plain and len(plain["items"]) == 10


@pytest.mark.parametrize(
    "path, status, code",
    [
        (EXPLAIN.format(1, -1), 422, "invalid_request"),
        (EXPLAIN.format(1, "abc"), 422, "invalid_request"),
        (EXPLAIN.format(1, "1 OR 1=1"), 422, "invalid_request"),
        (EXPLAIN.format(-1, 1), 422, "invalid_request"),
        (EXPLAIN.format(UNKNOWN_USER, 1), 404, "not_found"),  # not a recommended pair
        (EXPLAIN.format(2**62, 2**62), 404, "not_found"),
        ("/v1/users/1", 404, "not_found"),
        ("/v1/users/1/recommendations/", 404, "not_found"),
        ("/v1/users/1/recommendations/../../../etc/passwd", 404, "not_found"),
        ("/v1/users/1%2F2/recommendations", 404, "not_found"),
        ("/v2/users/1/recommendations", 404, "not_found"),
        ("/v1/users/%E2%98%83/recommendations/%F0%9F%98%80/explanation", 422, "invalid_request"),
    ],
)
def test_explanations_and_unknown_routes(http, world, path, status, code):
    _assert_error(http.get(path, headers={"X-API-Key": world["key"]}), status, code)


def test_a_trailing_slash_is_404_not_a_redirect_to_the_clients_host(http, world):
    r = http.get(ROUTE.format(world["known_user"]) + "/", headers={"X-API-Key": world["key"], "Host": "evil.example"})
    _assert_error(r, 404, "not_found")
    assert "location" not in r.headers and "evil.example" not in r.text


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writing_methods_are_405(http, world, method):
    r = http.request(method, ROUTE.format(world["known_user"]), headers={"X-API-Key": world["key"]}, json={})
    _assert_error(r, 405, "method_not_allowed")


# --------------------------------------------------------------------------------------
# Bytes a client library would not send
# --------------------------------------------------------------------------------------


def _raw(base: str, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as is on a new connection; the status code and the body."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
    assert match, data[:200]
    return int(match.group(1)), data.split(b"\r\n\r\n", 1)[-1]


RAW_PATHS = {
    "invalid percent-encoding": b"/v1/users/%ZZ/recommendations",
    "percent-encoded nul": b"/v1/users/1%00/recommendations",
    "latin-1 byte": b"/v1/users/\xe9/recommendations",
    "invalid utf-8": b"/v1/users/%FF%FE/recommendations?region=%FF",
    "overlong utf-8 slash": b"/v1/users/1%C0%AF2/recommendations",
    "query without value": b"/v1/users/1/recommendations?limit",
    "query of separators": b"/v1/users/1/recommendations?&&==&limit=%",
}


@pytest.mark.parametrize("path", RAW_PATHS.values(), ids=RAW_PATHS.keys())
def test_raw_malformed_requests_are_4xx(base, world, path):
    request = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-API-Key: " + world["key"].encode()
    status, body = _raw(base, request + b"\r\nConnection: close\r\n\r\n")
    assert 400 <= status < 500, (path, status, body[:300])
    assert b"Traceback" not in body


def test_oversized_request_line_and_headers_are_4xx(base, world):
    key = world["key"].encode()
    for request in (
        b"GET /v1/users/1/recommendations?region=" + b"N" * 200_000 + b" HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key,
        b"GET /v1/users/1/recommendations HTTP/1.1\r\nHost: x\r\nX-API-Key: " + b"k" * 200_000,
        b"GET /v1/users/1/recommendations HTTP/1.1\r\nHost: x\r\nX-API-Key: a\x00b",
        b"GET /v1/users/1/recommendations HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + b"\r\nX-API-Key: " + key,
    ):
        status, body = _raw(base, request + b"\r\nConnection: close\r\n\r\n")
        assert 400 <= status < 500 or (status == 200 and request.count(b"X-API-Key") == 2), (status, body[:300])


# --------------------------------------------------------------------------------------
# After all of it
# --------------------------------------------------------------------------------------


def test_zz_nothing_changed_and_no_request_was_a_5xx(http, in_world, before, startup_errors):
    """Runs last in this module (name order within the file): the serving schema is as it
    was, and the reader's own metrics counted no 5xx over every request above (beyond the
    start-up health polls)."""
    assert _snapshot() == before
    metrics = http.get("/metrics").text
    statuses = re.findall(r'^newsrec_reader_requests_total\{.*status="(\d{3})"\} (\S+)$', metrics, re.M)
    assert statuses, metrics[:500]
    assert _server_errors(metrics) == startup_errors
    assert all('route="/v1/health"' in line for line in startup_errors), startup_errors
    assert {s for s, _ in statuses} >= {"200", "401", "404", "405", "422"}
    r = http.get(ROUTE.format(UNKNOWN_USER), headers={"X-API-Key": in_world["key"]})
    assert r.status_code == 200 and r.json()["fallback"] is True and r.json()["batch_id"] == in_world["batch"]
