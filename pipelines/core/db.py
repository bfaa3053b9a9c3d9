"""Where the database is and how to talk to it.

``NEWSREC_DATABASE_URL`` points at an existing server's newsrec database. Without it, the
embedded PostgreSQL of :mod:`pipelines.local.postgres` is started on first use (the one place
the production path falls back to local tooling). Side databases (Airflow metadata, MLflow) live on the same server and
are named after the main one (``<main>_airflow``, ``<main>_mlflow``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pipelines.core import sql as queries
from pipelines.core.config import get_settings
from pipelines.core.errors import ConfigError, NewsrecError, TransientError
from pipelines.local import postgres

if TYPE_CHECKING:
    import pandas as pd
    import psycopg2.extensions

log = logging.getLogger(__name__)


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
    socket_dir = postgres.start_embedded() if start else settings.pg_dir
    return postgres.embedded_uri(socket_dir, name)


def sqlalchemy_url(database: str | None = None, driver: str = "psycopg2") -> str:
    """The same place as :func:`database_url` in SQLAlchemy's spelling."""
    url = database_url(database)
    return url.replace("postgresql://", f"postgresql+{driver}://", 1).replace("postgres:@/", "postgres@/", 1)


def connect(database: str | None = None, **kwargs: Any) -> psycopg2.extensions.connection:
    """A new psycopg2 connection; a one-line TransientError when the server cannot be reached."""
    import psycopg2

    url = database_url(database)
    try:
        return psycopg2.connect(url, connect_timeout=10, **kwargs)
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TransientError(f"cannot connect to PostgreSQL at {redact(url)}: {reason}") from exc


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
            cur.execute(queries.load("db_database_exists"), (name,))
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
    table = read_table(conn, query, params, types)
    if table is None:
        import pandas as pd

        return pd.DataFrame()
    return table.to_pandas()


def read_table(conn: Any, query: str, params: tuple | dict | None = None, types: dict[str, Any] | None = None) -> Any:
    """:func:`read_frame` as a pyarrow Table (None when the query returned nothing): for callers
    that select rows before paying for pandas' objects (strings, dates)."""
    import pyarrow.csv as pacsv

    with conn.cursor() as cur:
        bound = cur.mogrify(query, params).decode() if params else query
        buf = io.BytesIO()
        cur.copy_expert(f"COPY ({bound}) TO STDOUT WITH (FORMAT csv, HEADER true)", buf)
    buf.seek(0)
    if buf.getbuffer().nbytes == 0:
        return None
    # Only an unquoted empty field is NULL (COPY's CSV convention): pyarrow's default null
    # markers would turn the region code "NA" into a missing value.
    convert = pacsv.ConvertOptions(
        column_types=types or {}, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    return pacsv.read_csv(buf, convert_options=convert)


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


def server_status() -> postgres.ServerStatus:
    settings = get_settings()
    if settings.database_url:
        try:
            with connect() as conn:
                conn.cursor().execute(queries.load("db_ping"))
            return postgres.ServerStatus(False, True, redact(settings.database_url))
        except NewsrecError:
            return postgres.ServerStatus(False, False, redact(settings.database_url))
    info = postgres.read_postmaster(settings.pg_dir)
    return postgres.ServerStatus(True, bool(info), str(settings.pg_dir), info[0] if info else None)
