"""How batch scoring evaluates the trees: LightGBM's own predict, or the same model compiled.

Predicting ~70M candidate rows a night is most of the scoring cost. ``lleaves`` compiles a
LightGBM model file to native code (LLVM) that gives the same scores several times faster.
Compiling takes tens of seconds, so the library is built once per model version and kept
next to the exported model file (``$NEWSREC_HOME/serving/models/<version>-<run id>/``). Before the
compiled model scores anything, it must reproduce LightGBM's scores on real rows; otherwise
scoring stops rather than publish lists ranked by a wrong model.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from pipelines.core.config import params
from pipelines.core.errors import ConfigError, NewsrecError
from pipelines.model.registry import export_for_serving

log = logging.getLogger(__name__)

ENGINES = ("lleaves", "lightgbm")
LIBRARY = "model.lleaves.so"
# Compiled and LightGBM scores agree to ~1e-14 on these models; anything near ranking
# resolution means the compiled code is not the same model.
MAX_DIFFERENCE = 1e-6
CHECK_ROWS = 20_000


def engine_name(engine: str | None = None) -> str:
    name = engine or os.environ.get("NEWSREC_SCORING_ENGINE") or params("scoring").get("engine", "lleaves")
    if name not in ENGINES:
        raise ConfigError(f"scoring engine must be one of {', '.join(ENGINES)}, not {name!r}")
    return name


def threads() -> int:
    return int(params("training").get("lightgbm", {}).get("num_threads", 2))


_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lleaves-compile")


class Predictor:
    """Scores matrices with one model version; the first matrix also proves the compiled
    model equals LightGBM's.

    The compiled model is built in a thread of its own (LLVM releases the GIL), so that the
    scoring run reads its features and candidates meanwhile; the first predict waits for it."""

    def __init__(self, model: Any, engine: str | None = None) -> None:
        self.model = model
        self.engine = engine_name(engine)
        self._compile_seconds = 0.0
        self._compiled: Any = None
        self._pending: Future | None = None
        self._checked = self.engine == "lightgbm"
        # The matrix dtype the engine reads without another copy (lleaves evaluates in fp64).
        self.dtype = np.float64 if self.engine == "lleaves" else np.dtype(model.spec.dtype)
        if self.engine == "lleaves":
            self._pending = _COMPILER.submit(_compiled, model.version)

    @property
    def compile_seconds(self) -> float:
        self._wait_compiled()
        return self._compile_seconds

    def _wait_compiled(self) -> None:
        if self._pending is not None:
            self._compiled, self._compile_seconds = self._pending.result()
            self._pending = None

    def __call__(self, X: np.ndarray) -> np.ndarray:
        self._wait_compiled()
        if self._compiled is None:
            return self.model.booster.predict(X, num_threads=threads())
        scores = self._compiled.predict(X, n_jobs=threads())
        if not self._checked:
            self._check(X[:CHECK_ROWS], scores[:CHECK_ROWS])
        return scores

    def _check(self, X: np.ndarray, compiled: np.ndarray) -> None:
        expected = self.model.booster.predict(X, num_threads=threads())
        diff = float(np.max(np.abs(expected - compiled), initial=0.0))
        if not diff <= MAX_DIFFERENCE:
            raise NewsrecError(
                f"compiled model v{self.model.version} differs from LightGBM by {diff:.3g} on real rows; "
                f"delete {LIBRARY} in its serving folder or set scoring.engine: lightgbm"
            )
        self._checked = True


def _compiled(version: str) -> tuple[Any, float]:
    """The compiled model of ``version`` and the seconds spent compiling it: built and cached
    on first use (atomic rename: a crash or a concurrent run never leaves half a library)."""
    import lleaves

    folder = export_for_serving(version)
    library = folder / LIBRARY
    compiled = lleaves.Model(model_file=str(folder / "model.txt"))
    if library.exists():
        compiled.compile(cache=str(library))
        return compiled, 0.0
    t0 = time.perf_counter()
    tmp = folder / f".{LIBRARY}.{os.getpid()}.tmp"
    log.info("compiling model v%s with lleaves (once per version)", version)
    compiled.compile(cache=str(tmp))
    os.replace(tmp, library)
    return compiled, time.perf_counter() - t0
