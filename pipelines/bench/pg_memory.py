"""The PostgreSQL server's memory while a stage runs, for the benchmark's peak.

A stage's own peak RSS leaves out the server it talks to, yet both share the machine's memory
cap. A thread samples the server's processes (the postmaster and every backend) a few times a
second and keeps the peak of their summed PSS: proportional set size splits shared pages
(``shared_buffers``) between the processes that map them, so the sum counts them once, where
summed RSS would count them once per backend. The server must run on this machine (the
embedded default does); for a remote one the sampler says so and measures nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType

import psutil

from pipelines.core import db


def server_process() -> psutil.Process | None:
    """The postmaster of the configured database, if it runs on this machine."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = int(cur.fetchone()[0])
        try:
            parent = psutil.Process(backend).parent()
        except psutil.Error:
            return None  # a server on another host: its pid is not ours
        return parent
    finally:
        conn.close()


def tree_pss_mb(root: psutil.Process) -> float:
    """Summed PSS of ``root`` and its children, in MB (processes that end meanwhile are skipped)."""
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_full_info().pss
        except psutil.Error:
            continue
    return total / 2**20


@dataclass
class PeakSampler:
    """``with PeakSampler(server) as s: ...`` then ``s.peak_mb`` (None when nothing was sampled)."""

    root: psutil.Process | None
    interval_s: float = 0.25
    peak_mb: float | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pg-memory", daemon=True)

    def _sample(self) -> None:
        if self.root is None:
            return
        try:
            mb = tree_pss_mb(self.root)
        except psutil.Error:
            return
        self.peak_mb = mb if self.peak_mb is None else max(self.peak_mb, mb)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> PeakSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
