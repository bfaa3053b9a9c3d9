"""Secrets (README, "Security"): none in the repository, none in what the CLI and the reader
print or log, API keys stored only as hashes."""

from __future__ import annotations

import hashlib
import re
import secrets
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from psycopg2 import sql

from pipelines.core import db
from tests.helpers import ROOT, query, run_cli, use_database
from tests.reliability.reader_world import ROUTE, running_reader, served_world

# --------------------------------------------------------------------------------------
# The repository
# --------------------------------------------------------------------------------------

# Found anywhere in a tracked text file.
ANYWHERE = {
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:([^\s@/'\"]+)@", re.I),
    "private key": re.compile(r"-----BEGIN ((?:[A-Z]+ )?PRIVATE KEY)-----"),
    "AWS access key": re.compile(r"\b(AKIA[0-9A-Z]{16})\b"),
    "GitHub token": re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,})\b"),
    "Slack token": re.compile(r"\b(xox[abprs]-[A-Za-z0-9-]{10,})"),
    "JSON web token": re.compile(r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"),
    "password in SQL": re.compile(r"(?i)\bPASSWORD\s+'([^']*)'"),
    # What `newsrec reader keys create` prints: secrets.token_urlsafe(32), 43 characters.
    "API-key-like token": re.compile(r"(?<![\w-])((?=[\w-]*[A-Z])(?=[\w-]*[a-z])(?=[\w-]*\d)[\w-]{43})(?![\w-])"),
}
_NAME = r"[\w.-]*(?:password|passwd|secret|token|api_?key)[\w.-]*"
# KEY=value / key: value in configuration files, and quoted literals assigned in code.
IN_CONFIG = re.compile(rf"(?im)^[ \t]*(?:export[ \t]+)?{_NAME}[ \t]*[:=][ \t]*['\"]?([^\s'\"#]+)")
IN_CODE = re.compile(rf"(?i)\b{_NAME}\s*[:=]\s*(['\"])([^'\"\s]{{4,}})\1")
CONFIG_SUFFIXES = {".env", ".example", ".yml", ".yaml", ".ini", ".cfg", ".toml", ".conf", ".properties"}
# Values that are not secrets: references to the environment or to secret files, placeholders.
NOT_SECRET = re.compile(
    r"^(\$\{?\w+.*|.*\$\{.*|/run/secrets/.*|\*+|\.\.\.|<[^>]*>|change-me[\w-]*|\[.*|\{.*|\?set|[A-Z][A-Z_]*)$"
)
ASSIGNED = {"password in a URL", "password in SQL", "credential in configuration", "credential literal"}
# A fake password on purpose: the CLI test that checks it is redacted.
ALLOWED = {("tests/integration/test_cli.py", "secret")}


def _tracked_text_files() -> list[tuple[str, str]]:
    names = subprocess.run(["git", "ls-files", "-z"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    out = []
    for name in filter(None, names.split("\0")):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            out.append((name, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue  # images and other binaries
    return out


def find_secrets(name: str, text: str) -> list[str]:
    """Secret-looking values in one file, as 'file:line: kind: value'."""
    found = []

    def report(kind: str, match: re.Match, value: str) -> None:
        # Placeholders pass where a value is assigned; a token-shaped string never does.
        if (kind in ASSIGNED and NOT_SECRET.match(value)) or (name, value) in ALLOWED:
            return
        found.append(f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {kind}: {value[:60]}")

    for kind, pattern in ANYWHERE.items():
        for m in pattern.finditer(text):
            report(kind, m, m.group(1))
    if Path(name).suffix in CONFIG_SUFFIXES or Path(name).name.startswith(".env"):
        for m in IN_CONFIG.finditer(text):
            report("credential in configuration", m, m.group(1))
    for m in IN_CODE.finditer(text):
        report("credential literal", m, m.group(2))
    return found


def test_no_secret_in_tracked_files():
    files = _tracked_text_files()
    assert len(files) > 100 and any(n == ".env.example" for n, _ in files)
    found = [hit for name, text in files for hit in find_secrets(name, text)]
    assert found == [], "\n".join(found)
    tracked = {n for n, _ in files}
    assert ".env" not in tracked and not any(n.endswith((".pem", ".key", "id_rsa")) for n in tracked)
    assert ".env" in (ROOT / ".gitignore").read_text().split()


# Planted secrets, put together at run time so that this file itself passes the scan.
FAKE = "hunter" + "22"


@pytest.mark.parametrize(
    "name, text",
    [
        ("a.yml", "db: postgresql://newsrec:" + FAKE + "@db:5432/newsrec"),
        ("a.py", "conn = connect(password='" + FAKE + "')"),
        ("a.sql", "ALTER ROLE newsrec_reader PASSWORD " + "'" + FAKE + "';"),
        (".env", "READER_DB_PASSWORD=" + FAKE),
        ("a.toml", 'api_key = "' + FAKE + '"'),
        ("k.txt", "-----BEGIN OPENSSH " + "PRIVATE KEY-----"),
        ("a.md", "AKIA" + "ABCDEFGHIJKLMNOP"),
        ("a.md", "curl -H 'X-API-Key: Ab3" + "x_-" * 13 + "y'"),
    ],
)
def test_the_scan_finds_planted_secrets(name, text):
    assert find_secrets(name, text), text


@pytest.mark.parametrize(
    "name, text",
    [
        (".env.example", "POSTGRES_PASSWORD=change-me"),
        ("docker-compose.yml", "url: postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@db/newsrec"),
        ("docker-compose.yml", "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set}"),
        ("README.md", "ALTER ROLE newsrec_reader PASSWORD '...'"),
        ("a.py", "redacted = 'postgresql://u:***@h/db'"),
    ],
)
def test_the_scan_lets_placeholders_pass(name, text):
    assert find_secrets(name, text) == []


# --------------------------------------------------------------------------------------
# What the CLI and the reader print and log
# --------------------------------------------------------------------------------------


def _with_password(url: str, user: str, password: str) -> str:
    """``url`` (the test server's socket URL) logged in as ``user`` with ``password`` (the
    test server trusts local connections, so the password is carried but not needed)."""
    return re.sub(r"^postgresql://[^@/]*@", f"postgresql://{user}:{quote(password, safe='')}@", url)


PASSWORD = "pw-" + secrets.token_hex(8)


@pytest.fixture
def world(pg_server, migrated_template, tmp_path):
    with served_world(pg_server, migrated_template, tmp_path / "home", f"rel_secrets_{secrets.token_hex(3)}") as w:
        yield w


def _leaks(text: str, *secret_values: str) -> list[str]:
    return [s for s in secret_values if s and s in text]


def test_cli_never_prints_the_database_password(world, monkeypatch, tmp_path):
    url = _with_password(world["url"], "postgres", PASSWORD)
    monkeypatch.setenv("NEWSREC_DATABASE_URL", url)
    outputs = []
    for args in (
        ("-v", "db", "start"),
        ("-v", "db", "status"),
        ("-v", "db", "migrate"),
        ("-v", "warehouse", "summary"),
        ("-v", "serve", "status"),
        ("-v", "reader", "keys", "list"),
    ):
        proc = run_cli(*args, env={"NEWSREC_DATABASE_URL": url})
        assert proc.returncode == 0, (args, proc.stderr[-500:])
        outputs.append(proc.stdout + proc.stderr)
    assert "***" in outputs[0] + outputs[1]  # the URL is shown, with its password masked
    # Unreachable servers: the error names the place, never the password.
    for bad in (
        f"postgresql://newsrec:{PASSWORD}@127.0.0.1:1/newsrec",
        f"postgresql://newsrec@127.0.0.1:1/newsrec?password={PASSWORD}&sslmode=disable",
        f"postgresql://newsrec:{quote(PASSWORD + '@:/?#x', safe='')}@127.0.0.1:1/newsrec",
    ):
        for args in (("-v", "db", "status"), ("-v", "warehouse", "summary"), ("db", "start")):
            proc = run_cli(*args, env={"NEWSREC_DATABASE_URL": bad})
            assert proc.returncode == 1 and "Traceback" not in proc.stderr, (args, proc.stderr[-500:])
            assert "127.0.0.1" in proc.stdout + proc.stderr
            outputs.append(proc.stdout + proc.stderr)
    assert [o for o in outputs if _leaks(o, PASSWORD, quote(PASSWORD, safe=""))] == []
    logged = "".join(p.read_text(errors="replace") for p in Path(world["home"]).rglob("*.log") if p.is_file())
    assert _leaks(logged, PASSWORD) == []


def test_redact_masks_every_spelling_of_the_password():
    for url in (
        f"postgresql://u:{PASSWORD}@h:5432/db",
        f"postgresql://u:{PASSWORD}@h/db?sslmode=require",
        f"postgresql://u@h/db?password={PASSWORD}",
        f"postgresql://u@h/db?sslmode=disable&PassWord={PASSWORD}&application_name=x",
        f"postgresql+psycopg2://u:{PASSWORD}@/db?host=/tmp/s",
    ):
        shown = db.redact(url)
        assert PASSWORD not in shown and "***" in shown, shown
        assert shown.split("/")[:3] == url.replace(PASSWORD, "***").split("/")[:3], shown
    assert db.redact("postgresql://u@h/db?sslmode=disable") == "postgresql://u@h/db?sslmode=disable"


def test_reader_never_logs_or_answers_its_password(world, monkeypatch, tmp_path):
    reader_pw = "rpw-" + secrets.token_hex(8)
    main_url = _with_password(world["url"], "postgres", PASSWORD)
    monkeypatch.setenv("NEWSREC_DATABASE_URL", main_url)
    monkeypatch.setenv("NEWSREC_READER_DATABASE_URL", _with_password(world["url"], "newsrec_reader", reader_pw))
    key = world["key"]
    (tmp_path / "up").mkdir()
    with running_reader(tmp_path / "up") as base, httpx.Client(base_url=base, timeout=10) as http:
        bodies = [
            http.get("/v1/health"),
            http.get(ROUTE.format(world["known_user"]), headers={"X-API-Key": key}),
            http.get(ROUTE.format("abc"), headers={"X-API-Key": key}),
            http.get(ROUTE.format(1), headers={"X-API-Key": "wrong"}),
            http.get("/v1/users/1/recommendations/2/explanation", headers={"X-API-Key": key}),
            http.get("/metrics"),
            http.get("/openapi.json"),
        ]
        assert [r.status_code for r in bodies] == [200, 200, 422, 401, 404, 200, 200]
    # The same with the database unreachable: 503s, logged errors.
    monkeypatch.setenv("NEWSREC_READER_DATABASE_URL", f"postgresql://newsrec_reader:{reader_pw}@127.0.0.1:1/x")
    (tmp_path / "down").mkdir()
    from pipelines.bench import servers

    with servers.serving("reader", "/openapi.json", {}, tmp_path / "down") as (base, _):
        with httpx.Client(base_url=base, timeout=10) as http:
            down = [http.get("/v1/health"), http.get(ROUTE.format(1), headers={"X-API-Key": key})]
        assert [r.status_code for r in down] == [503, 503]
    texts = [r.text for r in bodies + down] + [
        p.read_text(errors="replace") for p in tmp_path.rglob("*.log")
    ]  # the server logs
    assert any("not reachable" in t for t in texts)  # the down server did log its problem
    assert [t[:200] for t in texts if _leaks(t, reader_pw, PASSWORD, key)] == []


# --------------------------------------------------------------------------------------
# API keys at rest
# --------------------------------------------------------------------------------------


def test_api_keys_are_stored_only_as_hashes(world, monkeypatch):
    use_database(monkeypatch, world["url"], world["home"])
    proc = run_cli("reader", "keys", "create", "--name", "secrets-test")
    assert proc.returncode == 0, proc.stderr
    key = proc.stdout.strip().splitlines()[-1]
    assert len(key) >= 40
    digest = hashlib.sha256(key.encode()).hexdigest()
    rows = query("SELECT key_hash, key_prefix FROM serving.api_keys WHERE name = 'secrets-test'")
    assert rows == [(digest, key[:6])]
    # Nowhere in the database: every row of every table, as text, in every schema.
    tables = query(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    assert len(tables) > 20
    with db.transaction() as conn, conn.cursor() as cur:
        for schema, table in tables:
            cur.execute(
                sql.SQL("SELECT count(*) FROM {} t WHERE strpos(t::text, %s) > 0").format(
                    sql.Identifier(schema, table)
                ),
                (key[6:],),
            )
            assert cur.fetchone()[0] == 0, f"{schema}.{table} holds the API key"
    for secret_key in (world["key"], world["revoked"]):
        assert query("SELECT count(*) FROM serving.api_keys WHERE key_hash = %s OR key_prefix = %s",
                     (secret_key, secret_key)) == [(0,)]  # fmt: skip
        digest = hashlib.sha256(secret_key.encode()).hexdigest()
        assert query("SELECT count(*) FROM serving.api_keys WHERE key_hash = %s", (digest,)) == [(1,)]
    listing = run_cli("reader", "keys", "list")
    assert listing.returncode == 0 and "secrets-test" in listing.stdout and key not in listing.stdout
