"""Exporting a published batch to one file, for bulk consumers such as the e-mail sender.

Two formats: ``jsonl`` writes the reader's export lines (:mod:`pipelines.serving.ndjson`, one
user a line, the same bytes as ``GET /v1/recommendations/export``); ``parquet`` one row per
(user, rank) with batch_id, model_version, article_id, score and reason.

The batch is read in one read-only REPEATABLE READ transaction through a server-side cursor
(bounded memory), so a publish during the export neither mixes batches nor drops the rows
being read. The file is written next to its destination under a temporary name and renamed
over it only when complete: a failure, or a kill, never leaves a half-written ``output``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.errors import NewsrecError
from pipelines.core.faults import checkpoint
from pipelines.serving import ndjson

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "parquet")


@dataclass(frozen=True)
class ExportResult:
    batch_id: int
    model_version: str
    live: bool
    users: int
    rows: int
    path: Path
    size_bytes: int
    seconds: float


@dataclass(frozen=True)
class _Batch:
    batch_id: int
    model_version: str
    live: bool
    n_rows: int | None


def export_batch(
    output: Path | str, fmt: str = "jsonl", batch_id: int | None = None, progress: bool = True
) -> ExportResult:
    """Write the live batch (or the complete batch ``batch_id``) to ``output``, replacing it
    atomically. ``progress`` shows a progress bar on a terminal."""
    import psycopg2

    from pipelines.core.config import params

    if fmt not in FORMATS:
        raise NewsrecError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    output = Path(output)
    fetch_rows = int(params("serving").get("export", {}).get("fetch_rows", 50_000))
    write = _write_jsonl if fmt == "jsonl" else _write_parquet
    start = time.monotonic()
    conn = db.connect()
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        batch = _pick_batch(conn, batch_id)
        with _replaced_atomically(output) as tmp, _progress(batch.n_rows, progress) as bar:
            users, rows = write(conn, batch, tmp, fetch_rows, bar)
            checkpoint("export_before_rename")
        conn.rollback()
    except psycopg2.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NewsrecError(f"exporting batch {batch_id or 'live'} failed: {reason}") from exc
    except OSError as exc:  # e.g. the disk filled up; the temporary file is gone already
        raise NewsrecError(f"cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        conn.close()
    seconds = round(time.monotonic() - start, 2)
    size = output.stat().st_size
    log.info("exported batch %d: %d users, %d rows to %s in %.1f s", batch.batch_id, users, rows, output, seconds)
    return ExportResult(batch.batch_id, batch.model_version, batch.live, users, rows, output, size, seconds)


def _pick_batch(conn: Any, batch_id: int | None) -> _Batch:
    """The batch to export: the live one, or ``batch_id`` if it is complete (its rows kept)."""
    with conn.cursor() as cur:
        cur.execute(queries.load("export_live_batch_id"))
        live = cur.fetchone()[0]
        if batch_id is None:
            if live is None:
                raise NewsrecError("no batch is live yet: nothing to export (publish one, or pass --batch-id)")
            batch_id = live
        cur.execute(queries.load("export_batch_info"), (batch_id,))
        row = cur.fetchone()
    if row is None:
        raise NewsrecError(f"batch {batch_id} does not exist (see `newsrec serve status`)")
    model_version, status, n_rows = row
    if status == "retired":
        raise NewsrecError(
            f"batch {batch_id} is retired: its rows were dropped (publishing keeps the newest "
            "serving.publish.keep_batches complete batches)"
        )
    if status != "complete":
        raise NewsrecError(f"batch {batch_id} is {status}: only a complete batch can be exported")
    return _Batch(int(batch_id), str(model_version), batch_id == live, n_rows)


def _rows(conn: Any, batch: _Batch, fetch_rows: int) -> Iterator[list[tuple]]:
    """The batch's rows in export order, ``fetch_rows`` at a time (a server-side cursor)."""
    from pipelines.core.sql import load

    with conn.cursor(name="newsrec_export") as cur:
        cur.itersize = fetch_rows
        cur.execute(load("serving_export_rows"), {"batch_id": batch.batch_id})
        while rows := cur.fetchmany(fetch_rows):
            yield rows


def _write_jsonl(conn: Any, batch: _Batch, path: Path, fetch_rows: int, bar: Any) -> tuple[int, int]:
    lines = ndjson.UserLines(batch.batch_id, batch.model_version)
    with path.open("wb") as f:
        for rows in _rows(conn, batch, fetch_rows):
            f.write(lines.feed(rows))
            bar.update(len(rows))
        f.write(lines.close())
    return lines.users, lines.rows


def _write_parquet(conn: Any, batch: _Batch, path: Path, fetch_rows: int, bar: Any) -> tuple[int, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("batch_id", pa.int64()),
            ("model_version", pa.string()),
            ("user_id", pa.int64()),
            ("rank", pa.int16()),
            ("article_id", pa.int64()),
            ("score", pa.float32()),
            ("reason", pa.string()),
        ]
    )
    users = rows_written = 0
    last_user = None
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for rows in _rows(conn, batch, fetch_rows):
            user_id, rank, article_id, score, reason = zip(*rows, strict=True)
            n = len(rows)
            writer.write_batch(
                pa.record_batch(
                    [
                        pa.array([batch.batch_id] * n, pa.int64()),
                        pa.array([batch.model_version] * n, pa.string()),
                        pa.array(user_id, pa.int64()),
                        pa.array(rank, pa.int16()),
                        pa.array(article_id, pa.int64()),
                        pa.array(score, pa.float64()).cast(pa.float32(), safe=False),  # stored as real
                        pa.array(reason, pa.string()),
                    ],
                    schema=schema,
                )
            )
            for u in user_id:
                if u != last_user:
                    users, last_user = users + 1, u
            rows_written += n
            bar.update(n)
    return users, rows_written


@contextlib.contextmanager
def _replaced_atomically(output: Path) -> Iterator[Path]:
    """A temporary file in ``output``'s folder, renamed over ``output`` when the block ends
    well and removed when it does not. Creating it first checks that the place is writable
    before any row is read."""
    if output.is_dir():
        raise NewsrecError(f"cannot write {output}: it is a folder (give a file path)")
    tmp = output.with_name(f".{output.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise NewsrecError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(output.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _progress(total_rows: int | None, enabled: bool) -> Iterator[Any]:
    """A tqdm bar over rows on stderr, shown only on a terminal (and when ``enabled``)."""
    from tqdm import tqdm

    with tqdm(
        total=total_rows, unit="rows", unit_scale=True, desc="export", disable=None if enabled else True, leave=False
    ) as bar:
        yield bar
