"""Shared fixtures: one throwaway PostgreSQL server per test session, a fresh database per
test (cloned from a migrated template), and a small simulated world shared read-only."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.helpers import admin_sql, remove_later, use_database

ROOT = Path(__file__).resolve().parents[1]
_counter = itertools.count()

# A small world that read-only tests share; seeded once per session.
SMALL_WORLD = {"users": 600, "articles_per_day": 240, "days": 3, "start": date(2026, 1, 5), "seed": 11}

# The fast tier (`make test-fast`, i.e. `pytest -m "not slow"`): the unit and data tests and these
# quick integration files. Every other file is marked slow, so a new file joins the slow tier until
# it is listed here; SLOW_TESTS are the slow tests inside fast files (or mark them @pytest.mark.slow).
FAST_DIRS = ("tests/unit/", "tests/data/", "tests/dags/")
FAST_FILES = {
    "tests/integration/test_candidates.py",
    "tests/integration/test_cli.py",
    "tests/integration/test_alerts.py",
    "tests/integration/test_compose.py",
    "tests/integration/test_export.py",
    "tests/integration/test_features.py",
    "tests/integration/test_migrations.py",
    "tests/integration/test_mind_import.py",
    "tests/integration/test_profile.py",
    "tests/integration/test_propensity.py",
    "tests/integration/test_pg_memory.py",
    "tests/integration/test_publish.py",
    "tests/integration/test_reader.py",
    "tests/integration/test_report_drift.py",
    "tests/integration/test_simulator.py",
    "tests/integration/test_training_link.py",
    "tests/reliability/test_reader_bad_input.py",
    "tests/reliability/test_reader_role.py",
    "tests/reliability/test_secrets.py",
}
SLOW_TESTS = {
    "tests/integration/test_features.py::test_backfill_equals_single_days",
    "tests/integration/test_publish.py::test_serve_cli_status_and_rollback",
    "tests/reliability/test_secrets.py::test_cli_never_prints_the_database_password",
    "tests/unit/test_gates_units.py::test_score_drift_uses_a_distance_and_flags_a_shift",
}


# The slowest files, scheduled first (pytest-xdist's loadfile hands out files in collection order,
# so that a long file started last would leave the other worker idle at the end). The reliability
# files share one template that the first of them builds (tests/reliability/conftest.py): the
# first is near the top, the others further down, when the template is built.
SLOW_FIRST = (
    "tests/integration/test_mind_nightly.py",
    "tests/reliability/test_faults.py",
    "tests/integration/test_dask_cluster.py",
    "tests/model/test_experiments_sim.py",
    "tests/integration/test_bench_nightly.py",
    "tests/integration/test_nightly.py",
    "tests/model/test_oncall_paths.py",
    "tests/dags/test_dags.py",
    "tests/dags/test_dag_oncall.py",
    "tests/reliability/test_concurrency.py",
    "tests/integration/test_quality.py",
    "tests/integration/test_drift.py",
    "tests/model/test_training.py",
    "tests/reliability/test_bad_data.py",
    "tests/reliability/test_experiment_crash.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist would hand out the files with the most tests first (--loadscope-reorder, on by
    default): keep the collection order, where SLOW_FIRST leads."""
    if getattr(config.option, "loadscopereorder", None):
        config.option.loadscopereorder = False


def _fast_file(path: str) -> bool:
    return path.startswith(FAST_DIRS) or path in FAST_FILES


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Base URL (ending in '/') of a throwaway embedded PostgreSQL for this session."""
    import pgserver

    folder = Path(tempfile.mkdtemp(prefix="nrpg", dir="/tmp"))
    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql("ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;")
    server.psql("SELECT pg_reload_conf();")
    socket_dir = server.get_postmaster_info().socket_dir
    yield f"postgresql://postgres:@/{{db}}?host={socket_dir}"
    server.cleanup()
    remove_later(folder)


@pytest.fixture(scope="session")
def migrated_template(pg_server: str) -> str:
    """A database with every migration applied, used as the template for per-test copies."""
    name = "newsrec_template"
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, pg_server.format(db=name), Path(tempfile.mkdtemp(prefix="nrhome")))
        from pipelines.warehouse.migrations import migrate

        migrate()
    from pipelines.core.config import reset_caches

    reset_caches()
    return name


@pytest.fixture
def fresh_db(pg_server: str, migrated_template: str, monkeypatch, tmp_path) -> str:
    """A new, migrated, empty database that the environment points at; returns its URL."""
    name = f"t{os.getpid()}_{next(_counter)}"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    url = pg_server.format(db=name)
    use_database(monkeypatch, url, tmp_path / "home")
    return url


@pytest.fixture
def empty_db(pg_server: str, monkeypatch, tmp_path) -> str:
    """A new database with no migrations applied."""
    name = f"e{os.getpid()}_{next(_counter)}"
    admin_sql(pg_server, f"CREATE DATABASE {name}")
    url = pg_server.format(db=name)
    use_database(monkeypatch, url, tmp_path / "home")
    return url


@pytest.fixture(scope="session")
def small_world_db(pg_server: str, migrated_template: str) -> str:
    """Name of a database seeded once with SMALL_WORLD (tests must not modify it)."""
    name = "small_world"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, pg_server.format(db=name), Path(tempfile.mkdtemp(prefix="nrhome")))
        from pipelines.warehouse import simulator

        cfg = simulator.SimConfig.from_params(
            users=SMALL_WORLD["users"],
            articles_per_day=SMALL_WORLD["articles_per_day"],
            start=SMALL_WORLD["start"],
            seed=SMALL_WORLD["seed"],
        )
        simulator.seed(cfg, SMALL_WORLD["days"])
    from pipelines.core.config import reset_caches

    reset_caches()
    return name


@pytest.fixture
def small_world(pg_server: str, small_world_db: str, monkeypatch, tmp_path) -> str:
    """Point the environment at the shared small world; returns its URL."""
    url = pg_server.format(db=small_world_db)
    use_database(monkeypatch, url, tmp_path / "home")
    return url


@pytest.fixture(scope="session")
def airflow_template(pg_server: str, tmp_path_factory) -> str:
    """An Airflow metadata database that ``airflow db migrate`` built once for this session
    (a migration costs half a minute or more); :func:`airflow_db` copies it."""
    from pipelines.local.airflow import airflow_env

    name = "airflowtpl"
    admin_sql(pg_server, f"CREATE DATABASE {name}")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, pg_server.format(db=name), tmp_path_factory.mktemp("airflow_tpl"))
        env = {**os.environ, **airflow_env()}  # creates <name>_airflow
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    from pipelines.core.config import reset_caches

    reset_caches()
    return f"{name}_airflow"


@pytest.fixture(scope="session")
def airflow_db(pg_server: str, airflow_template: str):
    """``airflow_db()``: the Airflow metadata database of the database the environment points at,
    migrated (a copy of the session's template), unless it exists already; returns its name."""

    def ready() -> str:
        from pipelines.core import db

        name = f"{db.main_database_name()}_airflow"
        with db.transaction("postgres") as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            exists = cur.fetchone() is not None
        if not exists:
            admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {airflow_template}")
        return name

    return ready


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark the slow tier (before `-m` selects); see FAST_FILES."""
    path, _, name = item.nodeid.partition("::")
    if not _fast_file(path) or f"{path}::{name.split('[', 1)[0]}" in SLOW_TESTS:
        item.add_marker(pytest.mark.slow)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under `-m "not slow"` the slow files are not even imported (collecting them all costs ~15 s)."""
    if (config.option.markexpr or "").replace(" ", "") != "notslow" or not collection_path.name.startswith("test_"):
        return None
    return True if not _fast_file(collection_path.relative_to(config.rootpath).as_posix()) else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` spreads tests over processes by node id: two tests with one id would run once.
    The files of SLOW_FIRST come first, in its order; the rest keep theirs."""
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))
    seen: set[str] = set()
    twice = sorted({item.nodeid for item in items if item.nodeid in seen or seen.add(item.nodeid)})
    if twice:
        raise pytest.UsageError(f"tests share a node id (pytest-xdist would run only one of each): {twice[:5]}")
