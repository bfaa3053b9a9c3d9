"""The reader's database role ``newsrec_reader`` (README, "Security"): it reads the schema
``serving`` and, for explanations, the online feature store ``feast_online``: nothing else,
and it writes nowhere, by privileges and not only by its read-only default. Checked on a real
database with a published batch, Feast's online tables (``feast apply``) and MLflow's
database, both in the catalog (every relation, schema and database) and by trying."""

from __future__ import annotations

import importlib.util

import psycopg2
import pytest
from psycopg2 import errors, sql

from pipelines.core import db
from pipelines.reader.settings import READER_ROLE, as_reader
from tests.helpers import query, use_database
from tests.reliability.reader_world import served_world

READABLE = {"serving", "feast_online"}  # the one documented exception besides serving: feast_online
CLOSED = ("warehouse", "ops", "sim")
SYSTEM = ("pg_catalog", "information_schema", "pg_toast")


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    with served_world(pg_server, migrated_template, tmp_path_factory.mktemp("role"), "rel_role") as w:
        from pipelines.features import store
        from pipelines.model import registry

        store.apply()  # creates feast_online's tables and grants the reader SELECT on them
        if importlib.util.find_spec("mlflow"):  # not in the slim reader venv (tests/reader_slim)
            registry._client().search_registered_models()  # creates <main>_mlflow and its tables
        yield w


@pytest.fixture
def in_world(world, monkeypatch):
    use_database(monkeypatch, world["url"], world["home"])
    return world


@pytest.fixture
def reader(in_world):
    conn = psycopg2.connect(as_reader(in_world["url"]))
    conn.autocommit = True
    try:
        yield conn.cursor()
    finally:
        conn.close()


def _user_relations() -> list[tuple[str, str, str]]:
    """(schema, name, kind) of every table, partition, view, materialized view and sequence
    outside the system schemas."""
    return query(
        "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN %s AND n.nspname NOT LIKE 'pg_temp%%' "
        "AND n.nspname NOT LIKE 'pg_toast%%' ORDER BY 1, 2",
        (SYSTEM,),
    )


def test_the_role_has_no_power_beyond_login(in_world):
    (row,) = query(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit, rolcanlogin, "
        "rolconfig FROM pg_roles WHERE rolname = %s",
        (READER_ROLE,),
    )
    assert row[:5] == (False,) * 5 and row[6] is True
    assert "default_transaction_read_only=on" in row[7]
    # Member of no role at all (not pg_read_all_data, pg_write_all_data, pg_monitor, ...).
    assert query(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
        (READER_ROLE,),
    ) == []  # fmt: skip


def test_catalog_reads_serving_and_feast_online_only_and_writes_nowhere(in_world):
    relations = _user_relations()
    assert {s for s, _, _ in relations} >= {*READABLE, *CLOSED}
    assert any(s == "feast_online" for s, _, _ in relations), "feast apply made no online tables"
    readable, writable = set(), []
    for schema, name, kind in relations:
        oid = f'"{schema}"."{name}"'
        if kind == "S":
            privileges = ("USAGE", "SELECT", "UPDATE")
            granted = [
                p for p in privileges if query("SELECT has_sequence_privilege(%s, %s, %s)", (READER_ROLE, oid, p))[0][0]
            ]
            writable += [(schema, name, p) for p in granted]
            continue
        (can_read,) = query("SELECT has_table_privilege(%s, %s, 'SELECT')", (READER_ROLE, oid))[0]
        if can_read:
            readable.add(schema)
        for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
            if query("SELECT has_table_privilege(%s, %s, %s)", (READER_ROLE, oid, privilege))[0][0]:
                writable.append((schema, name, privilege))
    assert readable == READABLE
    assert writable == []
    # The five serving relations the reader needs are all readable.
    for table in ("batches", "recommendations", "fallback_recommendations", "live", "api_keys"):
        assert query("SELECT has_table_privilege(%s, %s, 'SELECT')", (READER_ROLE, f"serving.{table}"))[0][0]

    schemas = query(
        "SELECT nspname, has_schema_privilege(%s, oid, 'USAGE'), has_schema_privilege(%s, oid, 'CREATE') "
        "FROM pg_namespace WHERE nspname NOT IN %s AND nspname NOT LIKE 'pg_%%'",
        (READER_ROLE, READER_ROLE, SYSTEM),
    )
    assert {s for s, usage, _ in schemas if usage} <= {*READABLE, "public"}
    assert [s for s, _, create in schemas if create] == []
    assert query("SELECT has_database_privilege(%s, current_database(), 'CREATE')", (READER_ROLE,)) == [(False,)]


def test_reading_outside_serving_is_refused(reader, in_world):
    closed = [(s, n) for s, n, kind in _user_relations() if s in CLOSED and kind in ("r", "p", "v", "m")]
    assert len(closed) > 20
    for schema, name in closed:
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(schema, name)))
    with pytest.raises(errors.InsufficientPrivilege):
        reader.execute("SELECT warehouse.ensure_events_partition('2026-01-01')")
    # What it may read, it reads.
    reader.execute("SELECT count(*) FROM serving.recommendations WHERE batch_id = %s", (in_world["batch"],))
    assert reader.fetchone()[0] == len(in_world["recs"])
    feast_tables = [n for s, n, kind in _user_relations() if s == "feast_online" and kind == "r"]
    for name in feast_tables:
        reader.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("feast_online", name)))
        assert reader.fetchone()[0] >= 0


WRITES = [
    "INSERT INTO serving.api_keys (name, key_hash) VALUES ('evil', 'h')",
    "INSERT INTO serving.live (singleton, batch_id) VALUES (false, NULL)",
    "UPDATE serving.live SET batch_id = NULL",
    "UPDATE serving.batches SET status = 'failed'",
    "UPDATE serving.api_keys SET revoked_at = NULL",
    "UPDATE serving.fallback_recommendations SET score = 0",
    "DELETE FROM serving.recommendations",
    "DELETE FROM serving.api_keys",
    "TRUNCATE serving.batches CASCADE",
    "TRUNCATE serving.recommendations",
    "COPY serving.api_keys (name, key_hash) FROM STDIN",
    "CREATE TABLE serving.evil (x int)",
    "CREATE TABLE public.evil (x int)",
    "CREATE TABLE feast_online.evil (x int)",
    "CREATE VIEW serving.evil AS SELECT 1",
    "CREATE SCHEMA evil",
    "CREATE INDEX evil ON serving.api_keys (name)",
    "ALTER TABLE serving.api_keys ADD COLUMN evil text",
    "DROP TABLE serving.live",
    "CREATE FUNCTION serving.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "SELECT setval('serving.api_keys_key_id_seq', 1)",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
]


@pytest.mark.parametrize("statement", WRITES)
def test_writes_are_refused_by_privilege_even_in_a_read_write_transaction(reader, in_world, statement):
    reader.execute("BEGIN READ WRITE")
    try:
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute(statement)
    finally:
        reader.execute("ROLLBACK")


def test_granting_what_it_has_grants_nothing(reader, in_world):
    acl = query("SELECT relacl::text FROM pg_class WHERE oid = 'serving.api_keys'::regclass")
    reader.execute("BEGIN READ WRITE")
    reader.execute("GRANT SELECT ON serving.api_keys TO PUBLIC")  # PostgreSQL: a warning, no privilege
    reader.execute("COMMIT")
    assert query("SELECT relacl::text FROM pg_class WHERE oid = 'serving.api_keys'::regclass") == acl
    assert query("SELECT has_table_privilege('public', 'serving.api_keys', 'SELECT')") == [(False,)]


def test_the_default_transaction_is_read_only_too(reader, in_world):
    for statement in ("UPDATE serving.live SET batch_id = NULL", "CREATE TABLE public.evil (x int)"):
        with pytest.raises(errors.ReadOnlySqlTransaction):
            reader.execute(statement)
    assert query("SELECT batch_id FROM serving.live") == [(in_world["batch"],)]
    assert query("SELECT count(*) FROM serving.api_keys WHERE name = 'evil'") == [(0,)]


def test_mlflow_database_is_closed(in_world):
    pytest.importorskip("mlflow", reason="MLflow is not part of the reader's environment (tests/reader_slim)")
    name = f"{db.main_database_name()}_mlflow"
    with db.transaction(name) as conn, conn.cursor() as cur:
        cur.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN %s", (SYSTEM,))
        tables = cur.fetchall()
    assert {"experiments", "runs", "registered_models", "model_versions"} <= {t for _, t in tables}
    # CONNECT is PUBLIC's by default; with it the role still reads no table of MLflow's.
    conn = psycopg2.connect(as_reader(in_world["url"].replace(f"/{db.main_database_name()}?", f"/{name}?")))
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_database(), current_user")
        assert cur.fetchone() == (name, READER_ROLE)
        for schema, table in tables:
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(schema, table)))
    finally:
        conn.close()
