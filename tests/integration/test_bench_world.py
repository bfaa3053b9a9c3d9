"""A bench world built in a home that held another keeps nothing of the old one: its models
would be reused instead of trained, and its feature partials of the same dates would feed the
new world's features (the feature build reuses the earlier days' partials it finds)."""

from __future__ import annotations

from pipelines.bench import nightly_world
from pipelines.core import config, db
from tests.helpers import admin_sql, query


def _databases() -> set[str]:
    return {name for (name,) in query("SELECT datname FROM pg_database")}  # a shared catalog


def test_forget_world_drops_the_models_and_the_feature_files(pg_server: str, fresh_db: str) -> None:
    settings = config.get_settings()
    partial = settings.features_dir / "_daily" / "user_category" / "2026-12-01.parquet"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"an old world's partial")
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    (settings.artifacts_dir / "model.txt").write_text("tree")
    registry = f"{db.main_database_name()}_mlflow"
    admin_sql(pg_server, f'CREATE DATABASE "{registry}"')
    assert registry in _databases()

    nightly_world.forget_world()

    assert not settings.features_dir.exists()
    assert not settings.artifacts_dir.exists()
    assert registry not in _databases()
    assert db.main_database_name() in _databases()  # the warehouse itself stays
