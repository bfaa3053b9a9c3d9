"""The end of ``make demo``: a real reader process answering a real request over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask_reader() -> str:
    """Create an API key, start `newsrec reader serve`, ask for one user's list, stop it."""
    from pipelines.core import db
    from pipelines.core import sql as queries
    from pipelines.reader.keys import create_key

    _, key = create_key("demo")
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("demo_a_served_user"))
        row = cur.fetchone()
    if row is None:
        raise SystemExit("no live batch to read from")
    user_id = row[0]
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "reader", "serve", "--port", str(port), "--log-level", "warning"],
        env=os.environ.copy(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # health is 200 once explanations are warm (seconds of imports)
        while True:
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the reader did not start")
            time.sleep(0.3)
        url = f"{base}/v1/users/{user_id}/recommendations?limit=3"
        response = httpx.get(url, headers={"X-API-Key": key}, timeout=5)
        body = json.dumps(response.json(), indent=2)
        return (
            f"    GET {url}  (X-API-Key: {key[:6]}...)\n    HTTP {response.status_code}\n"
            + "\n".join("    " + line for line in body.splitlines())
            + "\n    (the demo key is kept; list or revoke it with `newsrec reader keys list|revoke`)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
