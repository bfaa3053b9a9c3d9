"""A stage killed without a word (SIGKILL, OOM) must not stay 'running' in ops.runs forever:
the next run finds that nobody holds the row's lock and marks it failed (abandoned)."""

from __future__ import annotations

import os
import subprocess
import sys

from pipelines.core import runs as ops
from tests.helpers import query

DOOMED = """
from pipelines.core import runs as ops
from pipelines.core.faults import checkpoint
with ops.record_run("doomed", None):
    checkpoint("doomed")
"""


def test_a_killed_run_is_marked_abandoned_by_the_next_run(fresh_db):
    env = {**os.environ, "NEWSREC_FAULT": "kill:doomed"}
    proc = subprocess.run([sys.executable, "-c", DOOMED], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert query("SELECT status FROM ops.runs WHERE stage = 'doomed'") == [("running",)]

    with ops.record_run("alive", None):
        with ops.record_run("nested", None):
            # the sweep of the nested run leaves a run whose process is alive alone
            assert query("SELECT status FROM ops.runs WHERE stage = 'alive'") == [("running",)]
        assert query("SELECT status, details->>'error' FROM ops.runs WHERE stage = 'doomed'") == [
            ("failed", ops.ABANDONED)
        ]
    assert query("SELECT stage, status FROM ops.runs ORDER BY run_id") == [
        ("doomed", "failed"),
        ("alive", "success"),
        ("nested", "success"),
    ]
