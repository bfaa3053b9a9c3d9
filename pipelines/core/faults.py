"""Named crash points for the reliability tests: ``checkpoint(name)`` does nothing unless
``NEWSREC_FAULT`` names that point.

``NEWSREC_FAULT`` is a comma-separated list of ``kill:<point>`` (the process SIGKILLs itself
there: no cleanup, no ``finally``, like a power cut or the OOM killer) and ``pause:<point>``
(the process writes its pid to ``$NEWSREC_FAULT_DIR/<point>`` and waits until a test removes
that file, e.g. while it restarts the database) and ``drop:<point>`` (the database server ends
the process's session there, once: a real ``psycopg2.OperationalError``, as when the server
restarts or a pooler drops the connection; the marker ``$NEWSREC_FAULT_DIR/<point>.dropped``
makes the retry pass). A bare ``<point>`` means ``kill:<point>``.
Production never sets the variable; the check is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

_VAR = "NEWSREC_FAULT"


def _actions() -> dict[str, str]:
    spec = os.environ.get(_VAR, "")
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        action, _, point = item.partition(":") if item.startswith(("kill:", "pause:", "drop:")) else ("kill", "", item)
        out[point] = action
    return out


def checkpoint(name: str) -> None:
    """Crash or pause here when the environment asks for it (tests only)."""
    if _VAR not in os.environ:
        return
    action = _actions().get(name)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "pause":
        marker = Path(os.environ.get("NEWSREC_FAULT_DIR", ".")) / name
        marker.write_text(str(os.getpid()))
        deadline = time.monotonic() + float(os.environ.get("NEWSREC_FAULT_PAUSE_S", "600"))
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    elif action == "drop":
        _drop_connection_once(Path(os.environ.get("NEWSREC_FAULT_DIR", ".")) / f"{name}.dropped")


def _drop_connection_once(marker: Path) -> None:
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))
    from pipelines.core import db
    from pipelines.core import sql as queries

    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(queries.load("faults_terminate_own_backend"))  # raises OperationalError
    finally:
        conn.close()
