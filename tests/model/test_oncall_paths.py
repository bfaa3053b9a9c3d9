"""The paths on-call uses, end to end on the trained world: ``newsrec model rollback`` and
``newsrec serve rollback`` through the CLI, the rollback DAG through ``airflow dags test``
(and its failure: no retry, one alert to a local SMTP server), and ``dvc repro`` reproducing
the champion's training snapshot from its registered hash.

The trained world is shared by the session: the rollback test leaves its champion as it
found it (one version, no previous champion) and publishes only batches dated DAY."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml

from pipelines.core import db
from pipelines.local.airflow import airflow_env, last_run_states
from pipelines.model import promotion, registry
from pipelines.serving import publish
from tests.helpers import ROOT, query, run_cli
from tests.model.conftest import DAY, TRAIN_DAYS
from tests.smtp_inbox import smtp_inbox

REGIONS = ("LATAM", "AFRICA", "NA", "GLOBAL")


def _frames(salt: int, k: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A batch without scoring: k unflagged articles per user, a fallback list per region."""
    users = np.array([u for (u,) in query("SELECT user_id FROM warehouse.users ORDER BY 1")])
    arts = np.array(
        [a for (a,) in query("SELECT a.article_id FROM warehouse.articles a JOIN warehouse.publications p "
                             "USING (publication_id) WHERE NOT p.misinformation_flag ORDER BY 1")]
    )  # fmt: skip
    picks = np.argsort(np.random.default_rng(salt).random((len(users), len(arts))), axis=1)[:, :k]
    recs = pd.DataFrame({
        "user_id": np.repeat(users, k), "rank": np.tile(np.arange(1, k + 1), len(users)),
        "article_id": arts[picks].ravel(), "score": np.tile(np.linspace(1.0, 0.1, k), len(users)),
        "reason": "Because you read Tests",
    })  # fmt: skip
    fallback = pd.DataFrame(
        [(r, i + 1, int(arts[(j * 7 + i + salt) % len(arts)]), 1.0 / (i + 1), f"Popular in {r}")
         for j, r in enumerate(REGIONS) for i in range(k)],
        columns=["region", "rank", "article_id", "score", "reason"],
    )  # fmt: skip
    return recs, fallback


def _live() -> int:
    return query("SELECT batch_id FROM serving.live")[0][0]


def _decisions_after(decision_id: int) -> list[tuple]:
    return query(
        "SELECT kind, challenger_version, champion_version, promoted FROM ops.model_decisions "
        "WHERE decision_id > %s ORDER BY decision_id",
        (decision_id,),
    )


# Airflow's own CLI entry point (what the `airflow` script calls), once per line of stdin: one
# process runs the three `airflow dags test` commands, paying Airflow's and the stages' imports
# (~20 s) once; the exit code of each command goes to the file descriptor in argv[1].
_AIRFLOW_CLI = """
import json, os, sys
from airflow.__main__ import main
done = os.fdopen(int(sys.argv[1]), "w")
for line in sys.stdin:
    sys.argv = ["airflow", *json.loads(line)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    done.write(f"{code}\\n")
    done.flush()
"""


@contextlib.contextmanager
def _airflow_cli(log_path: Path, **env_extra: str) -> Iterator[Callable[..., tuple[int, str]]]:
    """``run(*args)``: ``airflow ARGS`` in one long-lived process; (exit code, the log's tail)."""
    env = {**os.environ, **env_extra, **airflow_env()}
    done_r, done_w = os.pipe()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", _AIRFLOW_CLI, str(done_w)], env=env, stdin=subprocess.PIPE,
                                stdout=log, stderr=subprocess.STDOUT, text=True, pass_fds=(done_w,))  # fmt: skip
    os.close(done_w)
    done = os.fdopen(done_r)

    def run(*args: str) -> tuple[int, str]:
        proc.stdin.write(json.dumps(args) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([done], [], [], 600)
        line = done.readline() if ready else ""
        tail = log_path.read_text()[-3000:]
        assert line, f"airflow {' '.join(args)}: no exit code (timed out or died): {tail}"
        return int(line), tail

    try:
        yield run
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=120)
        finally:
            proc.kill()
            done.close()


def _rollback_dag(run: Callable[..., tuple[int, str]], logical: str, conf: dict) -> tuple[int, str]:
    return run("dags", "test", "newsrec_rollback", logical, "--conf", json.dumps(conf))


def _rollback_tries() -> list[tuple[str, str, int]]:
    """(task, state, try number) of the newest run of the rollback DAG."""
    with db.transaction(f"{db.main_database_name()}_airflow") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, state, try_number FROM task_instance WHERE run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = 'newsrec_rollback' ORDER BY id DESC LIMIT 1)"
        )
        return cur.fetchall()


def test_rollback_cli_and_dag_move_the_champion_and_the_live_batch(world, airflow_db, tmp_path):
    first = registry.champion_version()
    assert first == world["result"].version and registry.version_info(registry.PREVIOUS) is None
    champion = registry.load(first)
    # complete (data hash, evaluation record): a manual override may promote it
    lineage = {"logical_date": str(DAY), "run_name": "oncall-second", "dvc_data_hash": champion.tags["dvc_data_hash"]}
    second = registry.register(champion.booster, champion.spec, {"ndcg@10": 0.5}, {}, lineage,
                               artifacts={"evaluation.json": {}})  # fmt: skip
    try:
        # two champions: second replaced first
        assert promotion.promote_by_hand(second, "on-call drill") == (first, second)
        b1 = publish.publish_batch(DAY, first, *_frames(salt=1))
        b2 = publish.publish_batch(DAY, second, *_frames(salt=2))
        assert _live() == b2
        mark = query("SELECT coalesce(max(decision_id), 0) FROM ops.model_decisions")[0][0]

        # the CLI, one step back each
        proc = run_cli("model", "rollback")
        assert proc.returncode == 0, proc.stderr
        assert f"champion: {second} -> {first}" in proc.stdout
        assert registry.champion_version() == first
        assert _decisions_after(mark) == [("rollback", first, second, True)]
        proc = run_cli("serve", "rollback")
        assert proc.returncode == 0, proc.stderr
        assert f"live batch is now {b1}" in proc.stdout and _live() == b1
        runs = query("SELECT details->>'previous', details->>'live' FROM ops.runs WHERE stage = 'rollback' "
                     "AND status = 'success' ORDER BY run_id DESC LIMIT 1")  # fmt: skip
        assert runs == [(str(b2), str(b1))]

        # the DAG, to a named version and batch, then one step back with empty params
        airflow_db()  # the metadata database: a migrated copy of the session's
        with smtp_inbox() as inbox, _airflow_cli(tmp_path / "airflow.log", NEWSREC_ALERT_URL=inbox.url) as airflow:
            code, log = _rollback_dag(
                airflow, "2026-06-01T00:00:00+00:00", {"what": "both", "model_version": second, "batch_id": b2}
            )
            assert code == 0, log
            assert last_run_states("newsrec_rollback") == {"rollback": "success"}
            assert registry.champion_version() == second and _live() == b2
            assert _decisions_after(mark)[1:] == [("rollback", second, first, True)]

            code, log = _rollback_dag(airflow, "2026-06-02T00:00:00+00:00", {})
            assert code == 0, log
            assert last_run_states("newsrec_rollback") == {"rollback": "success"}
            assert registry.champion_version() == first and _live() == b1
            assert _decisions_after(mark)[2:] == [("rollback", first, second, True)]
            assert registry.version_info(registry.PREVIOUS) is None  # the shared world is as it was
            assert inbox.messages == []  # a run that succeeds alerts nobody

            # nothing to roll back to: the task fails at once (a NewsrecError), one alert is sent
            code, log = _rollback_dag(airflow, "2026-06-03T00:00:00+00:00", {"what": "model"})
        assert code != 0 and _rollback_tries() == [("rollback", "failed", 1)], log
        reason = f"NewsrecError: champion {first} has no previous champion to roll back to"
        alerts = query("SELECT task, kind, try_number, raised, notified, error FROM ops.alerts "
                       "WHERE source = 'newsrec_rollback'")  # fmt: skip
        assert alerts == [("rollback", "failure", 1, 1, "sent", reason)], log
        assert len(inbox.messages) == 1, inbox.texts()
        (text,) = inbox.texts()
        assert text.startswith("[newsrec] rollback failed for no date"), text
        assert f"reason: {reason}" in text and "run:    newsrec_rollback manual__" in text and "try 1" in text
        assert registry.champion_version() == first and _live() == b1  # the failed run moved nothing
    finally:
        if registry.champion_version() != first:
            registry.rollback()
        assert registry.champion_version() == first


def test_dvc_repro_reproduces_the_champions_training_snapshot(world, tmp_path):
    """``dvc repro`` in a scratch DVC project (this repo's dvc.yaml, params.yaml with the
    trained world's train_days) re-exports the champion's snapshot: same md5 as registered."""
    info = registry.version_info(registry.CHAMPION)
    project = tmp_path / "dvc"
    project.mkdir()
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    (project / "pipelines").symlink_to(ROOT / "pipelines")  # the stages' code deps
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["training"]["train_days"] = TRAIN_DAYS  # as the trained world's champion was trained
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    env = {
        **os.environ,
        "NEWSREC_PARAMS_FILE": str(project / "params.yaml"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # `newsrec`
        "PYTHONPATH": str(ROOT),  # this tree's pipelines, whichever checkout the venv was installed from
        "DVC_NO_ANALYTICS": "1",
    }
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=project, env=env, check=True, timeout=120)
    proc = subprocess.run([dvc, "repro"], cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    exported = project / "data" / "training" / "train.parquet"
    assert hashlib.md5(exported.read_bytes()).hexdigest() == info["tags"]["dvc_data_hash"]
    meta = json.loads((project / "data" / "training" / "meta.json").read_text())
    assert meta["logical_date"] == info["tags"]["logical_date"] == DAY.isoformat()
    assert meta["data_window"] == info["tags"]["data_window"]
    metrics = json.loads((project / "metrics" / "evaluate.json").read_text())
    assert metrics["model"]["ndcg@10"] > metrics["recency"]["ndcg@10"]  # the refit ranks, the baseline does not
    assert (project / "models" / "ranker.txt").stat().st_size > 0
    # the champion early-stopped on the unbiased metric, which the files cannot compute: the refit
    # trains exactly the trees the champion's early stopping kept, and says so
    refit = lgb.Booster(model_file=str(project / "models" / "ranker.txt"))
    kept = registry.registered_rounds(registry.CHAMPION)
    assert kept is not None and refit.num_trees() == kept
    assert f"{kept} trees, stopped on version champion's own early stopping" in proc.stdout
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock["stages"]["fit"]["params"]["params.yaml"]["training.objective"] == params["training"]["objective"]
    status = subprocess.run([dvc, "status"], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
