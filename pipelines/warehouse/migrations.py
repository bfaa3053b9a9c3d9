"""Versioned DDL migrations from ``sql/migrations``, applied in order and recorded.

Each file runs in its own transaction together with its bookkeeping row, under an advisory
lock, so concurrent callers and interrupted runs never leave a half-applied migration.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pipelines.core import db, locks
from pipelines.core import sql as queries
from pipelines.core.config import get_settings
from pipelines.core.errors import NewsrecError
from pipelines.core.faults import checkpoint

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or get_settings().sql_dir / "migrations"
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise NewsrecError(f"migration file name must look like 0001_name.sql: {path.name}")
        found.append(Migration(match.group(1), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise NewsrecError("two migration files share a version number")
    return found


def migrate(directory: Path | None = None) -> list[str]:
    """Apply pending migrations; return the versions applied now (empty when up to date)."""
    db.ensure_database(db.main_database_name())
    migrations = discover(directory)
    applied_now: list[str] = []
    conn = db.connect()
    try:
        for migration in migrations:
            with conn, conn.cursor() as cur:
                cur.execute(queries.load("migrations_lock"), (locks.MIGRATIONS,))
                cur.execute(_BOOTSTRAP)
                cur.execute(
                    queries.load("migrations_checksum"),
                    (migration.version,),
                )
                row = cur.fetchone()
                if row:
                    if row[0] != migration.checksum:
                        raise NewsrecError(
                            f"migration {migration.path.name} changed after it was applied; "
                            "add a new migration instead of editing an applied one"
                        )
                    continue
                cur.execute(migration.sql)
                checkpoint(f"migration:{migration.version}")  # executed, not yet recorded or committed
                cur.execute(
                    queries.load("migrations_record"),
                    (migration.version, migration.name, migration.checksum),
                )
                applied_now.append(migration.version)
    finally:
        conn.close()
    return applied_now


def applied_versions() -> list[str]:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("migrations_table_exists"))
        if cur.fetchone()[0] is None:
            return []
        cur.execute(queries.load("migrations_applied"))
        return [r[0] for r in cur.fetchall()]
