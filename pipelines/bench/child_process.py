"""Run one function in a fresh process, as an Airflow task would: its wall time includes
start-up and its peak memory is its own or, sampled, that of it and the processes it starts
together (summed PSS), optionally profiled with pyinstrument. Functions must be module-level
(the process is spawned, not forked)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def in_child(fn: Callable[..., Any], args: tuple, profile_to: str | None) -> dict[str, Any]:
    """Run one stage; returns its output, seconds inside the process and peak RSS."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    profiler = None
    if profile_to:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.01)
        profiler.start()
    import psutil

    from pipelines.bench.pg_memory import PeakSampler

    t0 = time.perf_counter()
    try:
        with PeakSampler(psutil.Process()) as sampled:  # the stage and the processes it starts, together
            out = fn(*args)
    finally:
        if profiler is not None:
            profiler.stop()
    seconds = time.perf_counter() - t0
    if profiler is not None:
        Path(profile_to).write_text(profiler.output_html())
        flat = profiler.output_text(unicode=False, color=False, flat=True).splitlines()[:60]
        tree = profiler.output_text(unicode=False, color=False)
        Path(profile_to).with_suffix(".txt").write_text("\n".join(flat) + "\n\n" + tree)
    return {"out": out, "inner_seconds": seconds, "peak_rss_mb": max(peak_rss_mb(), sampled.peak_mb or 0.0)}


def _die_with_parent(parent: int | None) -> None:
    """The child's initializer: on Linux, ask the kernel to stop the child when the process that
    started it dies (the bench, killed or interrupted, or the fork server, which exits with it), so
    that no stage goes on running (and holding gigabytes) alone. ``parent``: the bench's pid when
    it started the child itself."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the child outlives an interrupted bench
        return
    if parent is not None and os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _context() -> Any:
    """Spawned children: each pays its own start-up, as an Airflow task does. The harness's test
    sets ``NEWSREC_BENCH_PRELOAD`` (modules, comma-separated): its children fork from a server
    that imported those once, so that a tiny world's bench is not mostly imports."""
    preload = [name for name in os.environ.get("NEWSREC_BENCH_PRELOAD", "").split(",") if name]
    if not preload:
        return get_context("spawn")
    context = get_context("forkserver")
    context.set_forkserver_preload(preload)
    return context


def run_in_child(fn: Callable[..., Any], *args: Any, profile_to: Path | None = None) -> tuple[dict[str, Any], float]:
    """``fn(*args)`` in a fresh process; returns the child's report and the wall seconds."""
    t0 = time.perf_counter()
    context = _context()
    parent = os.getpid() if context.get_start_method() == "spawn" else None
    with ProcessPoolExecutor(1, mp_context=context, initializer=_die_with_parent, initargs=(parent,)) as pool:
        child = pool.submit(in_child, fn, args, str(profile_to) if profile_to else None).result()
    return child, time.perf_counter() - t0
