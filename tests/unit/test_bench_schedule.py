"""The nightly bench's scheduler: the plan's stages side by side as the DAG's scheduler would run
them (upstream done, memory slots within the cap), one at a time with ``serial``, and the first
failure stops the cycle."""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.bench import schedule, stages
from pipelines.core.errors import NewsrecError
from pipelines.nightly import plan


class Recorder:
    """A stand-in for running a stage: records when it started and ended, and how many slots
    the stages running at its start held; ``fail`` raises in that stage."""

    def __init__(self, seconds: float = 0.05, fail: str | None = None) -> None:
        self.seconds, self.fail = seconds, fail
        self.spans: dict[str, tuple[float, float]] = {}
        self.slots_at_start: dict[str, int] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, stage: stages.BenchStage) -> None:
        with self._lock:
            self._running.add(stage.name)
            self.slots_at_start[stage.name] = sum(plan.stage(n).memory_gib for n in self._running)
            t0 = time.perf_counter()
        # materialize holds on, so that it overlaps the drift check and training if they may run beside it
        time.sleep(self.seconds * (6 if stage.name == "materialize" else 1))
        with self._lock:
            self._running.discard(stage.name)
            self.spans[stage.name] = (t0, time.perf_counter())
        if stage.name == self.fail:
            raise RuntimeError(f"{stage.name} broke")


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_stages_run_side_by_side_after_their_upstream_and_within_the_cap():
    run = Recorder()
    schedule.run(stages.bench_stages(), run, serial=False, cap_gib=8)
    ran = [s.name for s in stages.bench_stages() if s.child is not None]
    assert sorted(run.spans) == sorted(ran)
    for name in ran:
        for upstream in set(plan.stage(name).after) & set(ran):
            assert run.spans[upstream][1] <= run.spans[name][0], (upstream, name)
    assert _overlap(run.spans["materialize"], run.spans["drift_check"])
    assert _overlap(run.spans["materialize"], run.spans["train"])
    assert max(run.slots_at_start.values()) <= 8


def test_a_stage_that_does_not_fit_waits_for_the_memory():
    run = Recorder()
    schedule.run(stages.bench_stages(), run, serial=False, cap_gib=6)  # training's 6 slots: alone
    assert not _overlap(run.spans["materialize"], run.spans["train"])
    assert max(run.slots_at_start.values()) <= 6
    with pytest.raises(NewsrecError, match="cap_gib 5 is below the memory slots of train"):
        schedule.run(stages.bench_stages(), Recorder(), serial=False, cap_gib=5)


def test_serial_runs_one_at_a_time_in_the_plan_order():
    run = Recorder(seconds=0.01)
    schedule.run(stages.bench_stages(), run, serial=True, cap_gib=8)
    order = sorted(run.spans, key=lambda n: run.spans[n][0])
    assert order == [s.name for s in stages.bench_stages() if s.child is not None]
    spans = [run.spans[n] for n in order]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_the_first_failure_stops_the_cycle():
    run = Recorder(fail="quality_gate")
    with pytest.raises(RuntimeError, match="quality_gate broke"):
        schedule.run(stages.bench_stages(), run, serial=False, cap_gib=8)
    assert "quality_gate" in run.spans
    assert not {"materialize", "drift_check", "train", "score_and_publish"} & set(run.spans)
