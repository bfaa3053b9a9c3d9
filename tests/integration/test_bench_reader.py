"""The reader load benchmark at a tiny size: it builds its own world, starts and stops the
servers, writes sane results. Nothing here depends on how fast this machine is."""

from __future__ import annotations

import json

import psutil
import pytest

from pipelines.bench import load_generators, servers
from pipelines.bench import reader as bench
from pipelines.reader.settings import ReaderParams
from tests.helpers import query, run_cli

_before: set[int] = set()


@pytest.fixture(autouse=True)
def _children_before() -> None:
    """Children the process already had (e.g. multiprocessing's resource tracker, started by an earlier test)."""
    _before.clear()
    _before.update(p.pid for p in psutil.Process().children(recursive=True))


def _no_children_left() -> None:
    left = [p.cmdline() for p in psutil.Process().children(recursive=True) if p.pid not in _before and p.is_running()]
    assert not left, left


def test_bench_reader_builds_a_world_and_writes_sane_results(fresh_db, tmp_path):
    results = tmp_path / "results"
    said: list[str] = []
    run = bench.run(results, seconds=1, users=150, connections=(4, 32), warmup=0, say=said.append)
    _no_children_left()

    data = json.loads((results / "reader.json").read_text())
    assert data["world"]["built"] is True and data["world"]["known_ids"] > 0 and data["world"]["unknown_ids"] > 0
    assert data["generator"] == run.generator and data["generator"] in ("wrk", "python")
    workers = ReaderParams.from_params().workers
    assert data["reader_workers"] == workers  # serving.reader.workers, named in the report
    cases = {(c["target"], c["connections"]): c for c in data["cases"]}
    assert set(cases) == {(t, n) for t in servers.TARGETS for n in (4, 32)}
    for case in cases.values():
        assert case["errors"] == 0 and case["non_2xx"] == 0, case
        assert case["requests"] > 0 and case["requests_per_s"] > 0, case
        assert 0 < case["p50_ms"] <= case["p90_ms"] <= case["p99_ms"] <= case["max_ms"], case
        assert case["bytes_per_response"] > 500, case  # a 10-item list, not an error body
    assert set(data["ratios"]) == {"4", "32"} and all(r > 0 for r in data["ratios"].values())
    assert data["checks"] and all(
        c["target"].startswith("reader") and c["met"] in (True, False) for c in data["checks"]
    )

    md = (results / "reader.md").read_text()
    assert f"the reader with {workers} uvicorn worker{'s' if workers != 1 else ''} (serving.reader.workers)" in md
    assert "| reader | 4 |" in md and "| bare | 32 |" in md and "| bare-model | 32 |" in md
    assert any(line.startswith("load generator:") for line in said)
    # The benchmark's API key does not outlive the run.
    keys = query("SELECT revoked_at FROM serving.api_keys WHERE name LIKE 'bench-reader %'")
    assert keys and all(revoked is not None for (revoked,) in keys)

    # A second run reads the live batch instead of building another world.
    again = bench.run(tmp_path / "again", seconds=1, users=150, connections=(4,), warmup=0, say=said.append)
    _no_children_left()
    assert again.world.built is False and again.world.batch_id == run.world.batch_id


def test_python_load_generator_against_the_bare_app(tmp_path):
    paths = [servers.ROUTE.format(user_id=u) for u in range(1, 50)]
    with servers.serving("bare", paths[0], {}, tmp_path) as (base, pid):
        assert psutil.pid_exists(pid)
        result = load_generators.run_python("bare", base, paths, "unused-key", connections=4, seconds=1)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    _no_children_left()
    assert result.generator == "python" and result.errors == 0 and result.requests > 0
    assert result.requests_per_s > 0 and 0 < result.p50_ms <= result.p99_ms <= result.max_ms


def test_cli_refuses_to_replace_a_warehouse_without_a_live_batch(small_world_db, pg_server, monkeypatch, tmp_path):
    from tests.helpers import use_database

    use_database(monkeypatch, pg_server.format(db=small_world_db), tmp_path / "home")
    proc = run_cli("bench", "reader", "--seconds", "1", "--results", str(tmp_path / "r"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "--world seed" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()
