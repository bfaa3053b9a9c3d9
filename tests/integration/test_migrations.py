import shutil
import threading

import pytest

from pipelines.core.errors import NewsrecError
from pipelines.warehouse import migrations
from tests.helpers import query


def test_migrate_applies_all_once_and_is_idempotent(empty_db):
    first = migrations.migrate()
    assert first == [m.version for m in migrations.discover()]
    assert migrations.migrate() == []
    assert migrations.applied_versions() == first
    schemas = {r[0] for r in query("SELECT schema_name FROM information_schema.schemata")}
    assert {"warehouse", "serving", "ops", "sim"} <= schemas
    live = query("SELECT batch_id FROM serving.live")
    assert live == [(None,)]


def test_concurrent_migrations_apply_each_version_once(empty_db):
    errors = []

    def worker():
        try:
            migrations.migrate()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = query("SELECT version, count(*) FROM ops.schema_migrations GROUP BY version")
    assert all(n == 1 for _, n in rows)
    assert len(rows) == len(migrations.discover())


def test_edited_applied_migration_is_refused(empty_db, tmp_path, monkeypatch):
    sql_dir = tmp_path / "sql"
    shutil.copytree(migrations.get_settings().sql_dir, sql_dir)
    migrations.migrate(sql_dir / "migrations")
    target = sorted((sql_dir / "migrations").glob("*.sql"))[-1]
    target.write_text(target.read_text() + "\n-- edited\n")
    with pytest.raises(NewsrecError, match="changed after it was applied"):
        migrations.migrate(sql_dir / "migrations")


def test_failed_migration_leaves_nothing_behind(empty_db, tmp_path):
    sql_dir = tmp_path / "migrations"
    shutil.copytree(migrations.get_settings().sql_dir / "migrations", sql_dir)
    (sql_dir / "9999_broken.sql").write_text("CREATE TABLE ops.half_done (x int);\nSELECT * FROM no_such_table;\n")
    with pytest.raises(Exception, match="no_such_table"):
        migrations.migrate(sql_dir)
    assert query("SELECT to_regclass('ops.half_done')") == [(None,)]
    assert "9999" not in migrations.applied_versions()
    # Everything before the broken file was applied and recorded.
    assert migrations.applied_versions() == [m.version for m in migrations.discover()]


def test_bad_migration_file_name(tmp_path):
    (tmp_path / "create_things.sql").write_text("SELECT 1;")
    with pytest.raises(NewsrecError, match="0001_name.sql"):
        migrations.discover(tmp_path)
