"""Explanations warmed at the reader's start, in the background.

The first explanation imports numpy, pandas, LightGBM and Feast, loads the live model's file
and opens the online store: over 10 s on a loaded machine. The lifespan starts
:meth:`ExplanationWarmup.start` instead, which explains one pair of the live batch in a
daemon thread (the same :func:`pipelines.serving.explanations.explain` a request calls), so
the process answers ``/v1/health`` at once and says ``starting`` (503) until the warm-up has
finished. A failed warm-up (no online store yet, a model file missing) never stops the
reader: health says why and still answers 200 for the lists; explanations answer their
usual 503 until a request succeeds.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pipelines.core import faults
from pipelines.core.errors import NewsrecError
from pipelines.core.sql import load

log = logging.getLogger(__name__)

WARMING, READY, UNAVAILABLE, OFF = "warming", "ready", "unavailable", "off"


def freeze_heap() -> None:
    """Leave the objects alive now out of every later garbage collection (``gc.freeze``).

    The app, its libraries and (after the warm-up) the model and Feast are hundreds of
    thousands of objects that live as long as the process, and each full collection, which the
    requests' own short-lived objects set off every few seconds, walked them all: at 32
    connections those pauses were the reader's p99 (76-113 ms against 21 ms frozen, with the
    same throughput or better; docs/benchmarks.md). Objects frozen are never collected; the
    requests' own garbage still is."""
    import gc

    gc.collect()
    gc.freeze()


class ExplanationWarmup:
    """The warm-up's state for health: ``warming`` until it has finished, then ``ready`` or
    ``unavailable`` (``off`` when ``serving.reader.warm_explanations`` is false); ``detail``
    says what it is waiting on, or why explanations are unavailable. Written by one thread,
    read by the event loop: plain attribute assignments."""

    def __init__(self, enabled: bool = True) -> None:
        self.state = WARMING if enabled else OFF
        self.detail: str | None = "waiting for the live batch" if enabled else None
        self.model_key: str | None = None
        self._sql = load("reader_warmup_pair")

    @property
    def finished(self) -> bool:
        return self.state != WARMING

    async def start(self, pool: Any) -> None:
        """Read one live pair (on the event loop, through the reader's pool), then load the
        rest in a daemon thread: a shutdown never waits for it."""
        from pipelines.reader.http_errors import DB_ERRORS

        if self.state != WARMING:
            return
        row, no_pair = None, "no live batch yet"
        try:
            found = await pool.fetchrow(self._sql)
            row = dict(found) if found is not None else None
        except DB_ERRORS as exc:
            no_pair = f"database unavailable at start ({type(exc).__name__})"
        except Exception as exc:  # never leave health at "starting" forever
            log.exception("reader: explanation warm-up could not read the live batch")
            no_pair = f"{type(exc).__name__} while reading the live batch"
        threading.Thread(target=self.load, args=(row, no_pair), name="explanation-warmup", daemon=True).start()

    def load(self, row: dict[str, Any] | None, no_pair: str = "no live batch yet") -> None:
        """Given a live pair whose model was exported for serving, import what explanations
        need and explain it once. Without one, nothing heavy is imported (tens of seconds of
        Feast on a loaded machine, for nothing to explain): the first request loads it."""
        try:
            if row is None:
                self._finish(UNAVAILABLE, f"{no_pair}: nothing warmed")
                return
            key = str(row["model_key"])
            from pipelines.core.config import get_settings

            if not (get_settings().serving_models_dir / key / "model.txt").exists():
                self._finish(UNAVAILABLE, f"model {key} is not exported for serving")  # as serving_model says
                return
            self.detail = "importing numpy, pandas, LightGBM and Feast"
            faults.checkpoint("reader_warmup")
            from pipelines.reader import settings
            from pipelines.serving import explanations

            self.detail = f"loading model {key} and reading its online features"
            explanations.explain(
                row["user_id"], row["article_id"], row["data_date"], str(row["model_version"]),
                settings.reader_database_url(), model_key=key,
            )  # fmt: skip
            self.model_key = key
            self._finish(READY, f"model {key} loaded, online features read")
        except NewsrecError as exc:
            self._finish(UNAVAILABLE, str(exc))
        except Exception as exc:
            # The message may name hosts; health is public: the type there, the rest in the log.
            log.warning("reader: explanation warm-up failed: %s: %s", type(exc).__name__, exc)
            self._finish(UNAVAILABLE, f"{type(exc).__name__} while warming (see the reader's log)")

    def served(self, model_key: str) -> None:
        """A request explained a pair: explanations work now, whatever the warm-up found."""
        if self.finished and self.state != READY:
            self.model_key = model_key
            self._finish(READY, f"model {model_key} loaded by a request")

    def _finish(self, state: str, detail: str) -> None:
        freeze_heap()  # what the warm-up loaded stays for the process's life too
        self.detail = detail
        self.state = state
        (log.info if state == READY else log.warning)("reader: explanations %s: %s", state, detail)
