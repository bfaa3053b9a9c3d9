"""Errors that the CLI turns into a one-line message and a non-zero exit code, and which of
them are worth a retry (:func:`failure_kind`, used by the Airflow tasks)."""

from __future__ import annotations

from typing import Literal


class NewsrecError(Exception):
    """A failure whose message is meant for the user (bad input, unreachable service)."""


class ConfigError(NewsrecError):
    """The environment or parameters are wrong; nothing was touched."""


class DataError(NewsrecError):
    """Input data is malformed; the operation was rolled back."""


class GateFailed(NewsrecError):
    """A critical gate check failed: nothing downstream may run. The message is one line (the
    failing checks and the report); the full verdict is logged and stored in ops."""


class TransientError(NewsrecError):
    """A service is not there right now (the database refuses connections, a stage's lock is
    held past its wait, the Dask scheduler or its workers are gone): the same call may pass
    later, so a scheduler retries it. Still a NewsrecError: the CLI prints it in one line."""


Kind = Literal["transient", "permanent", "unknown"]

# Raised by the libraries when a connection, a lock wait or a worker is lost; matched by
# (module prefix, class name) along the class's MRO so that classifying an error never
# imports SQLAlchemy or distributed.
_TRANSIENT_CLASSES = {
    ("psycopg2", "OperationalError"),  # connection lost, server restarting, lock_timeout, deadlock
    ("psycopg2", "InterfaceError"),  # "connection already closed"
    ("sqlalchemy", "OperationalError"),
    ("sqlalchemy", "DisconnectionError"),
    ("sqlalchemy", "InterfaceError"),
    ("distributed", "KilledWorker"),  # a Dask worker died under a task
    ("distributed", "CommClosedError"),  # the scheduler or a worker went away
    ("builtins", "ConnectionError"),
    ("builtins", "TimeoutError"),
}
# Deterministic: the same input fails the same way on every try (SQL against a changed
# schema, a constraint violated by the data, a value the column cannot hold).
_PERMANENT = (ValueError, TypeError, LookupError, NotImplementedError)
_PERMANENT_CLASSES = {
    ("psycopg2", "ProgrammingError"),
    ("psycopg2", "DataError"),
    ("psycopg2", "IntegrityError"),
    ("psycopg2", "NotSupportedError"),
}


def _own_kind(exc: BaseException) -> Kind:
    if isinstance(exc, TransientError):
        return "transient"
    names = {(cls.__module__.split(".")[0], cls.__name__) for cls in type(exc).__mro__}
    if names & _TRANSIENT_CLASSES:
        return "transient"
    if isinstance(exc, (NewsrecError, *_PERMANENT)) or names & _PERMANENT_CLASSES:
        return "permanent"
    return "unknown"


def failure_kind(exc: BaseException) -> Kind:
    """``transient`` (retry with backoff), ``permanent`` (fail at once: a gate, bad input, any
    other NewsrecError) or ``unknown``. The outermost classifiable error of the ``raise ...
    from`` chain decides: a GateFailed caused by a dropped connection is a gate's verdict, a
    RuntimeError a library raised from one is a dropped connection."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = _own_kind(current)
        if kind != "unknown":
            return kind
        current = current.__cause__
    return "unknown"
