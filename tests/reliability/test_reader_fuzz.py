"""Property-based tests of the reader from its own OpenAPI schema (schemathesis 4): generated
valid and invalid requests against the real server (uvicorn, the read-only role, a published
batch). No 5xx, every status and body is one the schema declares, invalid input is refused."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from pipelines.reader.app import create_app
from tests.reliability.reader_world import ROUTE, running_reader, served_world


def _schema(**generation):
    """The schema the app serves at /openapi.json (built without a database)."""
    schema = schemathesis.openapi.from_dict(create_app().openapi())
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True, database="none", **generation
    )
    return schema


# With the valid key added by the test: schemathesis neither generates nor breaks the key
# header, and adds no unknown query parameters (the reader ignores those, by design; see
# test_reader_bad_input), so every invalid request it makes must be refused.
KEYED = _schema(with_security_parameters=False, allow_extra_parameters=False)
# schemathesis makes up the key header itself (a string, or none at all).
ANONYMOUS = _schema(with_security_parameters=True)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    with served_world(pg_server, migrated_template, tmp_path_factory.mktemp("fuzz"), "rel_fuzz") as w:
        yield w


@pytest.fixture(scope="module")
def base(world, tmp_path_factory):
    with running_reader(tmp_path_factory.mktemp("fuzz_logs")) as url:
        yield url


@KEYED.parametrize()
@EXAMPLES
def test_generated_requests_with_a_valid_key(case, base, world):
    response = case.call(base_url=base, headers={"X-API-Key": world["key"]}, timeout=10)
    case.validate_response(response, checks=CHECKS)


@ANONYMOUS.parametrize()
@EXAMPLES
def test_generated_requests_with_a_generated_key(case, base):
    """schemathesis fills X-API-Key itself (any string, or none): never a 5xx."""
    response = case.call(base_url=base, timeout=10)
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, content_type_conformance])
    if case.operation.path != "/v1/health" and case.method == "GET":
        assert response.status_code == 401, (case.headers, response.status_code, response.text[:200])


@pytest.fixture(scope="module")
def http(base):
    with httpx.Client(base_url=base, timeout=10) as client:
        yield client


# Any text a client library can send: everything but surrogates, and no CR, LF or NUL (which
# httpx refuses to put in a header; the raw-bytes tests in test_reader_bad_input send those).
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x00"), max_size=300)


@pytest.mark.parametrize("where", ["user", "limit", "region", "key"])
@given(text=TEXT)
@settings(max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_arbitrary_text_anywhere_is_never_a_5xx(http, world, where, text):
    """Any unicode text as the user id, the limit, the region or the API key: refused with a
    4xx (or, for a valid limit or region, answered), never a 5xx."""
    key = {"X-API-Key": world["key"]}
    user = ROUTE.format(world["known_user"])
    if where == "user":
        r = http.get(ROUTE.format(quote(text, safe="")), headers=key)
    elif where == "limit":
        r = http.get(user, params={"limit": text}, headers=key)
    elif where == "region":
        r = http.get(user, params={"region": text}, headers=key)
    else:
        # Wrapped and without control characters, which the client refuses to send in a
        # header (test_reader_bad_input sends those raw); non-ASCII goes out as UTF-8 bytes.
        value = "k" + "".join(c for c in text if unicodedata.category(c) != "Cc") + "k"
        r = http.get(user, headers=[(b"X-API-Key", value.encode())])
    assert r.status_code < 500, (where, text, r.status_code, r.text[:200])
    assert r.status_code in (200, 401, 404, 422), (where, text, r.status_code, r.text[:200])
    if where == "key":
        assert r.status_code == 401, (text, r.status_code, r.text[:200])
    if r.status_code == 200:
        assert r.json()["batch_id"] == world["batch"] and r.json()["items"]
