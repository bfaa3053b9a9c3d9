"""The servers the reader benchmarks start on loopback, one at a time, each in its own
process: the real reader (``newsrec reader serve``: uvicorn, ``serving.reader.workers``, asyncpg) or one of
the bare apps of :mod:`pipelines.bench.bare_app`; stopped whatever happens."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pipelines
from pipelines.core.errors import NewsrecError

ROUTE = "/v1/users/{user_id}/recommendations"
HOST = "127.0.0.1"
TARGETS = ("reader", "bare", "bare-model")


def _repo_root() -> Path:
    return Path(pipelines.__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _server_command(target: str, port: int) -> list[str]:
    if target == "reader":
        return [sys.executable, "-m", "pipelines.cli", "reader", "serve", "--host", HOST, "--port", str(port),
                "--log-level", "warning"]  # fmt: skip
    module = {"bare": "pipelines.bench.bare_app:app", "bare-model": "pipelines.bench.bare_app:model_app"}[target]
    return [sys.executable, "-m", "uvicorn", module, "--host", HOST, "--port", str(port),
            "--workers", "1", "--log-level", "warning", "--no-access-log"]  # fmt: skip


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (uvicorn shuts down gracefully), SIGKILL after 20 s; always reaped."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=20)


@contextlib.contextmanager
def serving(target: str, ready_path: str, headers: dict[str, str], log_dir: Path) -> Iterator[tuple[str, int]]:
    """Start one server, wait until ``ready_path`` answers 200, yield its base URL and pid;
    stop it on the way out, whatever happened."""
    import httpx

    port = _free_port()
    log_path = log_dir / f"{target}-server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            _server_command(target, port), cwd=_repo_root(), env=dict(os.environ),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://{HOST}:{port}"
            deadline = time.monotonic() + 180  # the reader says 200 once explanations are warm
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the {target} server exited at start:\n{_tail(log_path)}")
                try:
                    r = httpx.get(base + ready_path, headers=headers, timeout=2)
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {target} server did not answer within 180 s:\n{_tail(log_path)}")
                time.sleep(0.2)
            yield base, proc.pid
        finally:
            _stop(proc)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def preflight(base: str, paths: Sequence[str], key: str) -> None:
    """Before loading the reader: a personal list and a fallback list answer 200 with items."""
    import httpx

    unknown = next(p for p in paths if p.endswith("?region=NA"))
    known = next(p for p in paths if "?" not in p)
    for path, fallback in ((known, False), (unknown, True)):
        r = httpx.get(base + path, headers={"X-API-Key": key}, timeout=5)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if r.status_code != 200 or not body.get("items") or body.get("fallback") is not fallback:
            raise NewsrecError(f"reader preflight failed on {path}: HTTP {r.status_code} {r.text[:300]}")
