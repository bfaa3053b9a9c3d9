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


@dataclass
class NightSampler:
    """The whole night's memory: every process the bench started (the stages running side by
    side and whatever they spawned; not the bench's own) and the PostgreSQL server, sampled
    together, so that the peak of their sum is one moment's, not a sum of peaks."""

    driver: psutil.Process
    server: psutil.Process | None
    interval_s: float = 0.25
    processes_peak_mb: float = 0.0
    pg_peak_mb: float | None = None
    together_peak_mb: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="night-memory", daemon=True)

    def _sample(self) -> None:
        server = None if self.server is None else self.server.pid
        mine = 0.0
        for child in self.driver.children():
            if child.pid == server:
                continue
            try:
                mine += tree_pss_mb(child)
            except psutil.Error:  # a stage that ended between the listing and the reading
                continue
        pg = None
        if self.server is not None:
            try:
                pg = tree_pss_mb(self.server)
            except psutil.Error:
                pg = None
        self.processes_peak_mb = max(self.processes_peak_mb, mine)
        if pg is not None:
            self.pg_peak_mb = pg if self.pg_peak_mb is None else max(self.pg_peak_mb, pg)
        self.together_peak_mb = max(self.together_peak_mb, mine + (pg or 0.0))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> NightSampler:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float | None]:
        return {"processes_peak_mb": self.processes_peak_mb, "pg_peak_mb": self.pg_peak_mb,
                "together_peak_mb": self.together_peak_mb}  # fmt: skip
