"""The soak at CI size: 8 s, 8 connections, one publish switch and one rollback under load,
against the real reader; zero errors and every list complete and from one batch. The full
run is ``make soak`` (60 s, 32 connections)."""

from __future__ import annotations

import json
from collections import Counter

import psutil

from pipelines.bench import soak, soak_load, soak_report, soak_world
from tests.helpers import query


def test_short_soak_passes_with_switches_under_load(fresh_db, tmp_path):
    said: list[str] = []
    before = {p.pid for p in psutil.Process().children(recursive=True)}  # e.g. multiprocessing's resource tracker
    result = soak.run(tmp_path / "results", seconds=8, connections=8, switches=1, users=300, say=said.append)
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()]
    assert not [p.cmdline() for p in left]  # the soak stopped every server and client it started

    assert result.passed, result.render()
    assert result.errors == 0 and result.requests > 200 and result.ok == result.requests
    assert [s.kind for s in result.switches] == ["publish", "rollback"]
    published, rolled_back = result.switches
    assert published.error is None and rolled_back.error is None
    assert rolled_back.batch_id < published.batch_id  # back to the batch before the switch
    # Clients read the first batch, the switched-to one, and the first again after the rollback.
    assert set(result.responses_by_batch) == {rolled_back.batch_id, published.batch_id}
    assert all(n > 0 for n in result.responses_by_batch.values())
    assert result.final_live_batch == rolled_back.batch_id
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms

    data = json.loads((tmp_path / "results" / "soak.json").read_text())
    assert data["passed"] is True and data["errors"] == 0 and data["requests"] == result.requests
    assert all(c["met"] for c in data["checks"])
    md = (tmp_path / "results" / "soak.md").read_text()
    assert "**PASSED**" in md and "| rollback |" in md
    # Its own database: the project's database got no batch and no key.
    assert query("SELECT count(*) FROM serving.batches") == [(0,)]
    assert query("SELECT count(*) FROM serving.api_keys") == [(0,)]
    with soak_world.own_database("{main}_soak"):
        assert query("SELECT count(*) FROM serving.api_keys WHERE revoked_at IS NULL") == [(0,)]
        assert query("SELECT batch_id FROM serving.live") == [(rolled_back.batch_id,)]


def _soak(**kw) -> soak_report.Soak:
    s = soak_report.Soak(seconds=1, connections=1, users=2, k=3, batches={1: "soak-1", 2: "soak-2"})
    for name, value in kw.items():
        setattr(s, name, value)
    return s


def test_the_check_catches_mixed_short_and_foreign_lists():
    plan = [soak_load.Target("/u/1", "u1", False), soak_load.Target("/u/9", "rGLOBAL", True)]
    expected = {1: {"u1": (10, 11, 12), "rGLOBAL": (50, 51, 52)}, 2: {"u1": (20, 21, 22), "rGLOBAL": (60, 61, 62)}}
    outcomes = Counter(
        {
            (0, 1, "soak-1", False, 3, True, (10, 11, 12)): 5,  # right
            (1, 2, "soak-2", True, 3, True, (60, 61, 62)): 4,  # right
            (0, 2, "soak-2", False, 3, True, (10, 21, 22)): 1,  # mixes batches 1 and 2
            (0, 1, "soak-1", False, 2, True, (10, 11)): 1,  # incomplete
            (0, 3, "soak-3", False, 3, True, (10, 11, 12)): 1,  # a batch the soak never published
            (0, 1, "soak-2", False, 3, True, (10, 11, 12)): 1,  # wrong model version for the batch
            (1, 1, "soak-1", False, 3, True, (50, 51, 52)): 1,  # a fallback list not marked as one
            (0, 1, "soak-1", False, 3, False, (10, 11, 12)): 1,  # ranks out of order
        }
    )
    raw = {"outcomes": outcomes, "statuses": Counter({"503": 2}), "errors": {"timeout": 1}}
    s = _soak()
    soak_load.verify(s, raw, plan, expected)
    assert s.ok == 9 and s.mismatches == 6 and s.requests == 17
    assert s.errors == 6 + 2 + 1 and s.responses_by_batch == {1: 5, 2: 4}
    assert len(s.mismatch_examples) == 5 and any("not batch 2's list" in m for m in s.mismatch_examples)
    s.switches = [soak_report.Switch("publish", batch_id=2, at_s=0.5, took_s=0.1)]
    s.final_live_batch = s.expected_live_batch = 2
    assert not s.passed
    assert [c["met"] for c in s.checks()] == [False, False, True, True, True]

    clean = _soak(switches=[soak_report.Switch("publish", batch_id=2, at_s=0.5, took_s=0.1)])
    soak_load.verify(clean, {"outcomes": Counter({(0, 1, "soak-1", False, 3, True, (10, 11, 12)): 3}),
                         "statuses": Counter(), "errors": {}}, plan, expected)  # fmt: skip
    clean.final_live_batch = clean.expected_live_batch = 2
    assert not clean.passed  # batch 2 went live but no client ever read it
    assert [c["met"] for c in clean.checks()] == [True, True, True, False, True]


def test_the_report_names_the_readers_worker_count():
    assert "`newsrec reader serve` (2 uvicorn workers)" in _soak(reader_workers=2).render()
    assert "`newsrec reader serve` (1 uvicorn worker)" in _soak(reader_workers=1).render()
