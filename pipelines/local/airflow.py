"""Airflow's configuration for newsrec, as environment variables.

Airflow keeps its metadata in ``<main>_airflow`` on the project's PostgreSQL, reads DAGs from
``dags/`` and plugins from ``plugins/``, and lives under ``$NEWSREC_HOME/airflow``. Every way
of starting Airflow (``newsrec airflow ...``, ``make airflow``, the tests) goes through
:func:`airflow_env`, so they all see the same installation.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import PROJECT_ROOT, get_settings
from pipelines.core.errors import NewsrecError


def airflow_home() -> Path:
    return get_settings().home / "airflow"


def airflow_env(port: int = 8080) -> dict[str, str]:
    """Environment for any airflow command; creates the metadata database if needed."""
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    name = f"{db.main_database_name()}_airflow"
    db.ensure_database(name)
    passwords = home / "simple_auth_manager_passwords.json"
    if not passwords.exists():
        passwords.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        passwords.chmod(0o600)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db.sqlalchemy_url(name),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # first retry of a transient failure (then exponential backoff); tests shorten it
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": os.environ.get("AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY", "30"),
        # the project's own settings reach the task processes unchanged
        "NEWSREC_HOME": str(get_settings().home),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }
    if get_settings().database_url:
        env["NEWSREC_DATABASE_URL"] = get_settings().database_url
    return env


def memory_pool_command() -> list[str]:
    """``airflow pools set ...`` for the nightly's memory pool: its slots are the memory cap in
    GiB (params.yaml nightly.memory.cap_gib), each heavy task takes its peak in GiB of them
    (``pipelines.nightly.plan`` ``memory_gib``), so tasks the DAG draws side by side run together
    only while their peaks fit the cap."""
    from pipelines.nightly.plan import MEMORY_POOL, STAGES, memory_cap_gib

    cap = memory_cap_gib()
    biggest = max(s.memory_gib for s in STAGES)
    if cap < biggest:
        raise NewsrecError(f"nightly.memory.cap_gib {cap} is below the heaviest stage's {biggest} GiB")
    description = f"newsrec nightly: {cap} GiB memory cap (a task's slots: its peak in GiB)"
    return ["pools", "set", MEMORY_POOL, str(cap), description]


def ensure_memory_pool(env: dict[str, str]) -> None:
    """Create or resize the memory pool (after ``airflow db migrate``)."""
    import subprocess
    import sys

    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, *memory_pool_command()], env=env, check=True, stdout=subprocess.DEVNULL)


def admin_password() -> str:
    data = json.loads((airflow_home() / "simple_auth_manager_passwords.json").read_text())
    return data["admin"]


def exec_airflow(args: list[str]) -> None:
    """Replace this process with ``airflow ARGS`` in the newsrec environment."""
    import shutil
    import sys

    env = {**os.environ, **airflow_env()}
    binary = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
    os.execvpe(binary, [binary, *args], env)


def last_run_states(dag_id: str) -> dict[str, str]:
    """Task states of the newest run of ``dag_id``, read from Airflow's metadata database."""
    with db.transaction(f"{db.main_database_name()}_airflow") as conn, conn.cursor() as cur:
        cur.execute(
            queries.load("airflow_last_run_states"),
            (dag_id,),
        )
        return {task: state or "none" for task, state in cur.fetchall()}


SERVICES = ("api-server", "scheduler", "dag-processor")


def start_services(port: int = 8080, timeout_s: float = 120, no_login: bool = False) -> tuple[str, list[int]]:
    """Start the Airflow services detached from this process; wait until the API answers."""
    import subprocess
    import sys
    import time
    import urllib.request

    env = {**os.environ, **airflow_env(port)}
    if no_login:
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    ensure_memory_pool(env)
    logs = airflow_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pids = []
    for service in SERVICES:
        with open(logs / f"{service}.log", "ab") as fh:
            proc = subprocess.Popen([airflow, service], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        pids.append(proc.pid)
    (airflow_home() / "services.pid").write_text("\n".join(map(str, pids)))
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2) as response:
                if response.status == 200:
                    return url, pids
        except OSError:
            time.sleep(1)
    raise NewsrecError(f"Airflow did not answer on {url} within {timeout_s:.0f} s; see {logs}")


def stop_services() -> int:
    import signal

    pid_file = airflow_home() / "services.pid"
    if not pid_file.exists():
        return 0
    stopped = 0
    for pid in map(int, pid_file.read_text().split()):
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped += 1
        except ProcessLookupError:
            pass
    pid_file.unlink()
    return stopped
