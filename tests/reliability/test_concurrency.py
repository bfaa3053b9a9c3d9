"""A backfill and a nightly run of overlapping dates, started at the same moment in two
processes (``newsrec backfill`` in a process of its own, ``run_day`` in a thread of the
test's): the write-domain locks make them take turns, date by date, so no row is written
twice, one model is registered per date, exactly one batch is live, and the end state is
the one an undisturbed run gives (whatever order the lock grants them in)."""

from __future__ import annotations

import os

from tests.helpers import query, use_database
from tests.reliability import nightly_world as nw


def _intervals(after_run: int) -> dict[tuple[int, str], tuple]:
    """(process, date) -> (first start, last end) of the stages that process ran for that date."""
    rows = query(
        "SELECT (details->>'pid')::int, logical_date::text, min(started_at), max(finished_at), "
        "bool_and(status = 'success') FROM ops.runs WHERE run_id > %s AND logical_date IS NOT NULL GROUP BY 1, 2",
        (after_run,),
    )
    return {(pid, day): (start, end, ok) for pid, day, start, end, ok in rows}


def test_backfill_and_nightly_of_overlapping_dates_take_turns(make_world, reference, monkeypatch, tmp_path):
    url, home = make_world("concurrent")
    use_database(monkeypatch, url, home)
    events = "SELECT count(*), count(DISTINCT event_id) FROM warehouse.events WHERE event_ts::date = %s"
    events_before = {d: query(events, (d,))[0] for d in (nw.D0, nw.D)}
    runs_before = query("SELECT max(run_id) FROM ops.runs")[0][0]

    backfill = nw.cli(["backfill", "--from", str(nw.D0), "--to", str(nw.D), "--ingest", "simulate", *nw.RUN_ARGS],
                      {}, tmp_path / "backfill.log")  # fmt: skip
    nightly = nw.NightInThread()
    assert nw.finish(backfill) == 0, (tmp_path / "backfill.log").read_text()[-3000:]
    nightly.result()

    # the lock, not luck: the two processes' work on a date never overlapped in time
    spans = sorted((start, end, pid, day) for (pid, day), (start, end, ok) in _intervals(runs_before).items() if end)
    assert {pid for _, _, pid, _ in spans} == {backfill.pid, os.getpid()}
    for (_, end, pid, _), (start, _, other, _) in zip(spans, spans[1:], strict=False):
        assert pid == other or end <= start, spans
    assert query("SELECT count(*) FROM ops.runs WHERE run_id > %s AND status <> 'success'", (runs_before,)) == [(0,)]

    # no row twice: the re-simulated days equal what was there, event ids are unique
    assert {d: query(events, (d,))[0] for d in (nw.D0, nw.D)} == events_before
    assert all(n == distinct for n, distinct in events_before.values())
    # one model per date, one live batch, and the state of an undisturbed run
    state = nw.snapshot()
    expected = reference["after"]
    assert state["registry"] == expected["registry"]
    assert state["decisions"] == expected["decisions"]
    assert query("SELECT count(*) FROM serving.live") == [(1,)]
    assert nw.live_is_complete()
    assert state["live_batch"] == expected["live_batch"] and state["live"] == expected["live"]
    # every batch either failed or is complete with exactly its rows (three were published)
    batches = query("SELECT batch_id, status, n_rows FROM serving.batches WHERE batch_id > 1 ORDER BY 1")
    assert [status for _, status, _ in batches] == ["complete"] * 3
