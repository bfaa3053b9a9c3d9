"""Publishing a batch of recommendations: write it aside, then switch the live pointer.

A publish runs these steps, each in its own transaction, holding a session advisory lock
so that two publishes never interleave:

1. batches a crashed publish left 'writing' become 'failed' (their rows are dropped);
2. a new batch row is inserted ('writing');
3. its rows go into a table of their own (COPY, then the primary key), which is attached
   as a partition of ``serving.recommendations``; the fallback lists are written too;
4. the batch becomes 'complete' and ``serving.live`` points at it (one short transaction
   under the row lock of ``serving.live``, which rollback takes too), unless the live batch
   is of a later date (a late backfill never takes readers back in time; rollback does);
5. complete batches beyond the newest ``keep`` are 'retired' and their tables detached
   and dropped (metadata rows stay as history). The live batch is never retired.

A crash before step 4 leaves the previous batch live and complete, and the reader reads a
batch in one statement, so nobody ever sees a half-written batch. Rows carry the article's
title, url, category and publication name so the reader never needs the warehouse.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db, locks
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.core.faults import checkpoint
from pipelines.core.runs import record_run
from pipelines.serving import list_rows

log = logging.getLogger(__name__)

_PRUNE_LOCK_TIMEOUT = "5s"


def _before_switch(batch_id: int) -> None:
    """Called after a batch is fully written and before it goes live. A no-op; tests replace
    it to crash a publish exactly at this point."""


@dataclass(frozen=True)
class BatchInfo:
    batch_id: int
    data_date: date
    model_version: str
    status: str
    created_at: datetime
    published_at: datetime | None
    n_users: int | None
    n_rows: int | None
    live: bool


@dataclass(frozen=True)
class ServingStatus:
    live_batch_id: int | None
    switched_at: datetime | None
    batches: list[BatchInfo]


def _partition(batch_id: int) -> str:
    return f"recommendations_b{int(batch_id)}"


# --------------------------------------------------------------------------------------
# The publish
# --------------------------------------------------------------------------------------


def live_batch_id() -> int | None:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("publish_live_batch"))
        row = cur.fetchone()
    return row[0] if row else None


def publish_batch(
    day: date,
    model_version: str,
    recommendations: pd.DataFrame,
    fallback: pd.DataFrame,
    keep: int = 3,
    model_key: str | None = None,
) -> int:
    """Write a new batch and make it live atomically; keep the newest ``keep`` complete
    batches for rollback. Returns the new batch id.

    ``recommendations``: user_id, rank, article_id, score, reason (optional ``arm`` and
    ``model_version``: the experiment arm and the model that ranked the row);
    ``fallback``: region, rank, article_id, score, reason, with a GLOBAL list.
    ``model_key``: the serving folder of the model (see ``registry.artifact_key``), which the
    reader's explanations load; None for lists no registered model ranked.
    """

    list_rows.check_frames(recommendations, fallback, keep)
    with record_run("publish", day) as run:
        conn = db.connect()
        try:
            _acquire_publish_lock(conn)
            _sweep(conn, fail_writing=True)
            recs, fb = list_rows.denormalise(conn, recommendations, fallback)
            with conn.cursor() as cur:
                cur.execute(queries.load("publish_insert_batch"), (day, model_version, model_key))
                batch_id = int(cur.fetchone()[0])
            conn.commit()
            run.details["batch_id"] = batch_id
            try:
                n_users, n_rows = _write_rows(conn, batch_id, recs, fb)
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.rollback()
                _mark_failed(conn, batch_id)
                raise
            _before_switch(batch_id)
            checkpoint("publish_before_switch")
            previous, went_live = _switch(conn, batch_id)
            retired: list[int] = []
            try:  # the batch is live now: a cleanup problem must not report the publish failed
                retired = _retire(conn, keep)
                _sweep(conn, fail_writing=False)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    conn.rollback()
                log.warning(
                    "batch %d is live, but pruning old batches failed (next publish retries): %s", batch_id, exc
                )
                run.details["prune_error"] = str(exc)[:500]
            run.details.update(
                n_users=n_users,
                n_rows=n_rows,
                previous=previous,
                live=went_live,
                retired=retired,
                model_version=model_version,
            )
            log.info(
                "published batch %d (%s users, %s rows, live: %s); previous live %s; retired %s",
                batch_id, n_users, n_rows, went_live, previous, retired,
            )  # fmt: skip
            return batch_id
        finally:
            conn.close()  # also releases the session advisory lock


def _acquire_publish_lock(conn: Any) -> None:
    """One publish at a time; wait for a running one up to ``lock_wait_seconds``."""
    wait_s = float(params("serving").get("publish", {}).get("lock_wait_seconds", 600))
    if not locks.take(conn, locks.PUBLISH, wait_s):
        raise NewsrecError(f"another publish has been running for over {wait_s:.0f} s; try later")


def _list_columns(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns personal and fallback lists share, typed as the serving tables store them."""
    return {
        "rank": rows["rank"].to_numpy(np.int16),
        "article_id": rows["article_id"].to_numpy(np.int64),
        "score": rows["score"].to_numpy(np.float32),
        "reason": rows["reason"].astype(str).to_numpy(object),
        **{c: rows[c].to_numpy(object) for c in ("title", "url", "category", "publication")},
    }


def _write_rows(conn: Any, batch_id: int, recs: pd.DataFrame, fallback: pd.DataFrame) -> tuple[int, int]:
    """The batch's rows in their own table, indexed, then attached as a partition."""
    from psycopg2 import sql

    name = _partition(batch_id)
    table = sql.SQL("serving.{}").format(sql.Identifier(name))
    frame = pd.DataFrame(
        {
            "batch_id": np.int64(batch_id),
            "user_id": recs["user_id"].to_numpy(np.int64),
            **_list_columns(recs),
            "region": recs["region"].to_numpy(object),
            "arm": recs["arm"].to_numpy(object) if "arm" in recs.columns else None,
            "model_version": recs["model_version"].to_numpy(object) if "model_version" in recs.columns else None,
        }
    ).sort_values(["user_id", "rank"], kind="stable")
    fb = pd.DataFrame(
        {
            "batch_id": np.int64(batch_id),
            "region": fallback["region"].astype(str).to_numpy(object),
            **_list_columns(fallback),
        }
    )
    with conn.cursor() as cur:
        # The partition's DDL stays inline: its table name is composed per batch (sql.Identifier).
        # The CHECK matches the partition bound, so ATTACH needs no validation scan.
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE serving.recommendations INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
                "CONSTRAINT {} CHECK (batch_id = {}))"
            ).format(table, sql.Identifier(f"{name}_batch"), sql.Literal(batch_id))
        )
        db.copy_frame(cur, f"serving.{name}", frame)
        cur.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (batch_id, user_id, rank)").format(table))
        cur.execute(
            sql.SQL("ALTER TABLE serving.recommendations ATTACH PARTITION {} FOR VALUES IN ({})").format(
                table, sql.Literal(batch_id)
            )
        )
        db.copy_frame(cur, "serving.fallback_recommendations", fb)
        n_users = int(frame["user_id"].nunique())
        cur.execute(queries.load("publish_batch_counts"), (n_users, len(frame), batch_id))
        cur.execute(sql.SQL("ANALYZE {}").format(table))
    conn.commit()
    return n_users, len(frame)


def _mark_failed(conn: Any, batch_id: int) -> None:
    try:
        with conn.cursor() as cur:
            cur.execute(queries.load("publish_fail_batch"), (batch_id,))
        conn.commit()
    except Exception:  # the connection may be gone; the next publish fails it instead
        log.warning("could not mark batch %d failed", batch_id, exc_info=True)


def _switch(conn: Any, batch_id: int) -> tuple[int | None, bool]:
    """Complete the batch and point serving.live at it, in one transaction; returns the batch
    that was live and whether the pointer moved.

    The pointer never moves back in date: a batch of an older date than the live one (a late
    backfill of past days) is completed and kept for rollback, but readers keep the newer
    lists. Going back is an explicit rollback."""
    with conn.cursor() as cur:
        cur.execute(queries.load("publish_lock_live_with_date"))
        previous, live_date = cur.fetchone()
        cur.execute(queries.load("publish_complete_batch"), (batch_id,))
        row = cur.fetchone()
        if row is None:
            conn.rollback()
            raise NewsrecError(f"batch {batch_id} is no longer 'writing'; not switching")
        moved = live_date is None or row[0] >= live_date
        if moved:
            cur.execute(queries.load("publish_switch_live"), (batch_id,))
    conn.commit()
    if not moved:
        log.warning(
            "batch %d (%s) is complete but not live: the live batch %s is of a later date (%s)",
            batch_id, row[0], previous, live_date,
        )  # fmt: skip
    return previous, moved


def _retire(conn: Any, keep: int) -> list[int]:
    """Mark complete batches beyond the newest ``keep`` (and never the live one) retired."""
    with conn.cursor() as cur:
        cur.execute(queries.load("publish_lock_live"))
        live = cur.fetchone()[0]
        cur.execute(queries.load("publish_retire_batches"), {"live": live, "keep": keep})
        retired = sorted(r[0] for r in cur.fetchall())
    conn.commit()
    return retired


def _sweep(conn: Any, fail_writing: bool) -> None:
    """Drop the rows of failed and retired batches (and, under the publish lock, fail the
    batches a crashed publish left 'writing'). Best effort: what cannot be dropped now
    because readers hold locks is dropped by the next publish."""
    import psycopg2
    from psycopg2 import sql

    with conn.cursor() as cur:
        if fail_writing:
            cur.execute(queries.load("publish_fail_writing"))
            failed = [r[0] for r in cur.fetchall()]
            if failed:
                log.warning("batches %s were left 'writing' by a crashed publish: marked failed", failed)
        cur.execute(queries.load("publish_doomed_batches"))
        doomed = cur.fetchall()
        cur.execute(queries.load("publish_delete_doomed_fallback"))
    conn.commit()
    if not doomed:
        return
    conn.autocommit = True  # DETACH ... CONCURRENTLY cannot run inside a transaction block
    try:
        with conn.cursor() as cur:
            cur.execute(queries.load("locks_set_timeout"), (_PRUNE_LOCK_TIMEOUT,))
            for batch_id, attached, pending in doomed:
                # DETACH and DROP stay inline: the partition's name is composed per batch.
                table = sql.SQL("serving.{}").format(sql.Identifier(_partition(batch_id)))
                try:
                    if attached:
                        mode = sql.SQL("FINALIZE" if pending else "CONCURRENTLY")
                        cur.execute(
                            sql.SQL("ALTER TABLE serving.recommendations DETACH PARTITION {} {}").format(table, mode)
                        )
                    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
                except psycopg2.Error as exc:  # e.g. lock_timeout behind a long reader query
                    log.warning("could not drop the rows of batch %d yet: %s", batch_id, str(exc).strip())
            cur.execute(queries.load("locks_reset_timeout"))
    finally:
        conn.autocommit = False


# --------------------------------------------------------------------------------------
# Rollback and status
# --------------------------------------------------------------------------------------


def rollback(to_batch: int | None = None) -> int:
    """Point serving.live at the previous complete batch (or at ``to_batch``): one step,
    instant, no data copied. Returns the batch that is live now."""

    with record_run("rollback", None) as run:
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute(queries.load("publish_lock_live"))
            live = cur.fetchone()[0]
            if to_batch is None:
                if live is None:
                    raise NewsrecError("no batch is live yet: nothing to roll back")
                cur.execute(queries.load("publish_previous_complete"), (live,))
                target = cur.fetchone()[0]
                if target is None:
                    raise NewsrecError(f"no complete batch older than the live batch {live} to roll back to")
            else:
                cur.execute(queries.load("publish_batch_status"), (to_batch,))
                row = cur.fetchone()
                if row is None:
                    raise NewsrecError(f"batch {to_batch} does not exist")
                if row[0] != "complete":
                    raise NewsrecError(f"batch {to_batch} is {row[0]}: only a complete batch can go live")
                target = to_batch
            cur.execute(queries.load("publish_switch_live"), (target,))
        run.details.update(previous=live, live=target)
    log.warning("serving rolled back: live batch %s -> %s", live, target)
    return int(target)


def status(limit: int = 10) -> ServingStatus:
    """The live batch and the most recent batches (newest first)."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("publish_live_pointer"))
        live, switched_at = cur.fetchone()
        cur.execute(queries.load("publish_recent_batches"), (limit,))
        batches = [BatchInfo(*row, live=row[0] == live) for row in cur.fetchall()]
    return ServingStatus(live, switched_at if live is not None else None, batches)
