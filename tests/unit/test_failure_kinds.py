"""Which failures a task retries: transient ones (a lost connection, a lock wait, a lost Dask
worker), not permanent ones (a gate's verdict, bad input, any other NewsrecError)."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import errors as pg_errors

from pipelines.core.errors import ConfigError, DataError, GateFailed, NewsrecError, TransientError, failure_kind


def _raised_from(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:  # noqa: BLE001
        return exc


@pytest.mark.parametrize(
    "error",
    [
        psycopg2.OperationalError("server closed the connection unexpectedly"),
        psycopg2.InterfaceError("connection already closed"),
        pg_errors.LockNotAvailable("canceling statement due to lock timeout"),
        pg_errors.AdminShutdown("terminating connection due to administrator command"),
        TransientError("cannot connect to PostgreSQL at ...: connection refused"),
        ConnectionResetError("connection reset by peer"),
        TimeoutError("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_lost_connections_and_lock_waits_are_transient(error):
    assert failure_kind(error) == "transient"


def test_lost_dask_workers_are_transient():
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    assert failure_kind(KilledWorker("task", "tcp://10.0.0.1:4000", "oom")) == "transient"
    assert failure_kind(CommClosedError("in <TCP>: Stream is closed")) == "transient"


def test_sqlalchemy_disconnections_are_transient():
    import sqlalchemy.exc

    wrapped = sqlalchemy.exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError("gone"))
    assert failure_kind(wrapped) == "transient"


@pytest.mark.parametrize(
    "error",
    [
        GateFailed("quality raw 2026-06-09: FAILED (1 critical check(s))"),
        NewsrecError("no events loaded for 2026-06-09"),
        ConfigError("NEWSREC_DATABASE_URL must be a postgresql:// URL"),
        DataError("malformed"),
        ValueError("Invalid isoformat string: '2026-13-01'"),
        KeyError("hpo_trials"),
        TypeError("unsupported operand"),
        pg_errors.UndefinedColumn("column a.published_at does not exist"),  # a schema changed upstream
        pg_errors.UniqueViolation("duplicate key value violates unique constraint"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_verdicts_and_bad_input_are_permanent(error):
    assert failure_kind(error) == "permanent"


def test_the_outermost_classified_error_of_the_chain_decides():
    lost = psycopg2.OperationalError("server closed the connection unexpectedly")
    # a library that wraps a dropped connection in its own error: still a dropped connection
    assert failure_kind(_raised_from(RuntimeError("query failed"), lost)) == "transient"
    # a gate that decided on purpose stays a verdict, whatever it was raised from
    assert failure_kind(_raised_from(GateFailed("quality raw: FAILED"), lost)) == "permanent"
    # nothing known anywhere in the chain: Airflow's default (retry) applies
    assert failure_kind(_raised_from(RuntimeError("boom"), AttributeError("x"))) == "unknown"
