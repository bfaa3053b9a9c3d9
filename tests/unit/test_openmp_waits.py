"""OpenMP threads wait passively in newsrec's processes unless the environment says otherwise
(pipelines/__init__.py: spinning threads burned 7-17x the CPU of a LightGBM fit beside a busy
neighbour)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import ROOT

_PRINT = "import os, pipelines; print(os.environ['OMP_WAIT_POLICY'])"


def _policy(env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", _PRINT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_importing_newsrec_makes_openmp_wait_passively():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy(env) == "PASSIVE"


def test_an_explicit_policy_wins():
    assert _policy({**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
