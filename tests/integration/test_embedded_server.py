"""The embedded default: `newsrec db start|status|stop` with no NEWSREC_DATABASE_URL."""

import tempfile
from pathlib import Path

from tests.helpers import run_cli


def test_embedded_server_lifecycle(monkeypatch):
    home = Path(tempfile.mkdtemp(prefix="nrh", dir="/tmp"))
    monkeypatch.delenv("NEWSREC_DATABASE_URL", raising=False)  # run_cli passes this process's environment on
    env = {"NEWSREC_HOME": str(home)}
    try:
        started = run_cli("db", "start", env=env)
        assert started.returncode == 0, started.stderr
        assert "database ready" in started.stdout
        assert (home / "pg" / "PG_VERSION").exists()
        # a second process attaches to the same server instead of starting another
        status = run_cli("db", "status", env=env)
        assert status.returncode == 0 and "embedded PostgreSQL" in status.stdout and ": running" in status.stdout
        migrated = run_cli("db", "migrate", env=env)
        assert migrated.returncode == 0 and "applied" in migrated.stdout
        # the server outlives the processes that used it (no stop on exit)
        assert "running" in run_cli("db", "status", env=env).stdout
        assert run_cli("db", "stop", env=env).stdout.strip() == "stopped"
        down = run_cli("db", "status", env=env)
        assert down.returncode == 1 and "not running" in down.stdout
        # restarting an initialised server keeps the data
        assert run_cli("db", "start", env=env).returncode == 0
        assert run_cli("db", "migrate", env=env).stdout.strip() == "up to date"
    finally:
        run_cli("db", "stop", env=env)
