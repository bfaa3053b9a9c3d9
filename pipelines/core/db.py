"""Where the database is and how to talk to it.

``NEWSREC_DATABASE_URL`` points at an existing server's newsrec database. Without it, an
embedded PostgreSQL (the ``pgserver`` wheel) runs from ``$NEWSREC_HOME/pg`` and is shared by
every process of the project (CLI, Airflow tasks, the reader); it keeps running until
``newsrec db stop``. Side databases (Airflow metadata, MLflow) live on the same server and
are named after the main one (``<main>_airflow``, ``<main>_mlflow``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pipelines.core.config import get_settings
from pipelines.core.errors import ConfigError, NewsrecError

if TYPE_CHECKING:
    import pandas as pd
    import psycopg2.extensions

log = logging.getLogger(__name__)

# Server settings applied once to a fresh embedded cluster (they need a restart).
_EMBEDDED_SERVER_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "512MB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
}


@dataclass(frozen=True)
class ServerStatus:
    embedded: bool
    running: bool
    location: str
    pid: int | None = None


def _read_postmaster(pg_dir: Path) -> tuple[int, Path, str] | None:
    """(pid, socket dir, status) of a running embedded server, from postmaster.pid."""
    pid_file = pg_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8:
        return None
    pid = int(lines[0])
    try:
        import os

        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid, Path(lines[4].strip() or pg_dir), lines[7].strip()


def _embedded_uri(socket_dir: Path, database: str) -> str:
    return f"postgresql://postgres:@/{database}?host={socket_dir}"


def start_embedded() -> Path:
    """Start (or attach to) the embedded server; return its socket directory."""
    settings = get_settings()
    pg_dir = settings.pg_dir
    info = _read_postmaster(pg_dir)
    if info and info[2] == "ready":
        return info[1]
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (pg_dir / "PG_VERSION").exists()
    pgserver = _pgserver()
    log.info("starting embedded PostgreSQL in %s", pg_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pg_dir, cleanup_mode=None)
    if fresh:
        _tune_fresh_cluster(server)
    info = _read_postmaster(pg_dir)
    if not info:
        raise NewsrecError(f"embedded PostgreSQL did not start; see {pg_dir / 'log'}")
    return info[1]


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, cron); the fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


def _tune_fresh_cluster(server: Any) -> None:
    pgserver = _pgserver()

    for key, value in _EMBEDDED_SERVER_SETTINGS.items():
        server.psql(f"ALTER SYSTEM SET {key} = '{value}';")
    pgserver.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)


def stop_embedded() -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    settings = get_settings()
    if settings.database_url:
        raise ConfigError("NEWSREC_DATABASE_URL is set: the server is not managed by newsrec")
    if not _read_postmaster(settings.pg_dir):
        return False
    pgserver = _pgserver()

    user = "pgserver" if _is_root() else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=settings.pg_dir, user=user, timeout=60)
    return True


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def status() -> ServerStatus:
    settings = get_settings()
    if settings.database_url:
        try:
            with connect() as conn:
                conn.cursor().execute("SELECT 1")
            return ServerStatus(False, True, redact(settings.database_url))
        except NewsrecError:
            return ServerStatus(False, False, redact(settings.database_url))
    info = _read_postmaster(settings.pg_dir)
    return ServerStatus(True, bool(info), str(settings.pg_dir), info[0] if info else None)


def redact(url: str) -> str:
    """The URL without its password (``user:password@`` or libpq's ``?password=``), for
    messages and logs."""
    import re

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    if parts.query:
        parts = parts._replace(query=re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query))
    return urlunsplit(parts)


def database_url(database: str | None = None, *, start: bool = True) -> str:
    """libpq URL of the main database, or of a side database on the same server."""
    settings = get_settings()
    main = settings.database_name
    if settings.database_url:
        parts = urlsplit(settings.database_url)
        if not parts.scheme.startswith("postgres"):
            raise ConfigError(f"NEWSREC_DATABASE_URL must be a postgresql:// URL, got {parts.scheme!r}")
        main = parts.path.lstrip("/") or "postgres"
        name = main if database is None else database.replace("{main}", main)
        return urlunsplit(parts._replace(path="/" + name))
    name = main if database is None else database.replace("{main}", main)
    socket_dir = start_embedded() if start else settings.pg_dir
    return _embedded_uri(socket_dir, name)


def sqlalchemy_url(database: str | None = None, driver: str = "psycopg2") -> str:
    """The same place as :func:`database_url` in SQLAlchemy's spelling."""
    url = database_url(database)
    return url.replace("postgresql://", f"postgresql+{driver}://", 1).replace("postgres:@/", "postgres@/", 1)


def connect(database: str | None = None, **kwargs: Any) -> psycopg2.extensions.connection:
    """A new psycopg2 connection; a one-line NewsrecError when the server cannot be reached."""
    import psycopg2

    url = database_url(database)
    try:
        return psycopg2.connect(url, connect_timeout=10, **kwargs)
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NewsrecError(f"cannot connect to PostgreSQL at {redact(url)}: {reason}") from exc


@contextlib.contextmanager
def transaction(database: str | None = None) -> Iterator[psycopg2.extensions.connection]:
    """A connection whose work is committed on success and rolled back on any error."""
    conn = connect(database)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def ensure_database(name: str) -> None:
    """Create a database on the same server if it does not exist yet."""
    from psycopg2 import errors, sql

    conn = connect("postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return
            try:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except errors.DuplicateDatabase:
                pass
    finally:
        conn.close()


def main_database_name() -> str:
    settings = get_settings()
    if settings.database_url:
        return urlsplit(settings.database_url).path.lstrip("/") or "postgres"
    return settings.database_name


def copy_frame(cur: Any, table: str, frame: pd.DataFrame, chunk_rows: int = 500_000) -> int:
    """Bulk-load a DataFrame with COPY (CSV written by pyarrow, the fastest path measured)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = list(frame.columns)
    col_sql = ", ".join(f'"{c}"' for c in columns)
    total = 0
    for start in range(0, len(frame), chunk_rows):
        part = frame.iloc[start : start + chunk_rows]
        table_ = pa.Table.from_pandas(part, preserve_index=False)
        buf = io.BytesIO()
        pacsv.write_csv(table_, buf, pacsv.WriteOptions(include_header=False))
        buf.seek(0)
        cur.copy_expert(f"COPY {table} ({col_sql}) FROM STDIN WITH (FORMAT csv)", buf)
        total += len(part)
    return total


def read_frame(
    conn: Any, query: str, params: tuple | dict | None = None, types: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Run a query through COPY ... TO STDOUT and parse it with pyarrow (fast bulk reads).

    ``types`` pins pyarrow types for columns whose type must not depend on the data (an
    all-NULL or empty column would otherwise come back untyped).
    """
    import pyarrow.csv as pacsv

    with conn.cursor() as cur:
        bound = cur.mogrify(query, params).decode() if params else query
        buf = io.BytesIO()
        cur.copy_expert(f"COPY ({bound}) TO STDOUT WITH (FORMAT csv, HEADER true)", buf)
    buf.seek(0)
    if buf.getbuffer().nbytes == 0:
        import pandas as pd

        return pd.DataFrame()
    # Only an unquoted empty field is NULL (COPY's CSV convention): pyarrow's default null
    # markers would turn the region code "NA" into a missing value.
    convert = pacsv.ConvertOptions(
        column_types=types or {}, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    return pacsv.read_csv(buf, convert_options=convert).to_pandas()


def wait_until_ready(timeout_s: float = 30.0) -> None:
    """Block until the server accepts connections (used after restarts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connect("postgres").close()
            return
        except NewsrecError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
