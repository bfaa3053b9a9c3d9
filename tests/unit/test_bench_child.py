"""A bench stage runs in a child process that must not outlive the bench: killed, the bench
took its stage with it (before, a killed bench left a training child running with 5 GiB). The
parent-death signal is Linux's, as is every machine the project runs on (CI included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

_BENCH = "import time; from pipelines.bench.child_process import run_in_child; run_in_child(time.sleep, 300)"


def _descendants_once_started(parent: psutil.Process, timeout_s: float = 60.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sleeping = [p for p in parent.children(recursive=True) if p.status() == psutil.STATUS_SLEEPING]
        if any("spawn_main" in " ".join(p.cmdline()) for p in sleeping):
            time.sleep(2.0)  # past the initializer
            return parent.children(recursive=True)
        time.sleep(0.2)
    raise AssertionError("the stage's child process never started")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_stage_child_dies_with_the_bench(how: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NEWSREC_BENCH_PRELOAD", None)
    bench = subprocess.Popen([sys.executable, "-c", _BENCH], env=env, cwd=ROOT)
    try:
        children = _descendants_once_started(psutil.Process(bench.pid))
        assert children
        bench.send_signal(how)
        bench.wait(timeout=30)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if bench.poll() is None:
            bench.kill()
