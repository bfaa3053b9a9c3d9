"""The order the nightly bench runs its stages in: the way the DAG's scheduler would, or one
at a time.

As Airflow runs the nightly DAG, a stage starts once every stage it comes after (the plan's
``after``) is done, and only while the memory slots of the stages running beside it and its
own (``memory_gib``) fit the pool (``nightly.memory.cap_gib``); among the stages ready at
once, the plan's order goes first, and one that does not fit lets a later one that does
start. ``serial`` runs the same stages one at a time, in the plan's order: each stage's time
without the others' competition for the cores (the figure to compare stage by stage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from pipelines.core.errors import NewsrecError
from pipelines.nightly import plan

if TYPE_CHECKING:
    from pipelines.bench.stages import BenchStage


def run(stages: Sequence[BenchStage], start: Callable[[BenchStage], None], serial: bool, cap_gib: int) -> None:
    """Call ``start(stage)`` for each stage that runs (``child`` set), in threads (each
    stage's work is a process of its own), as the DAG would schedule them; the first failure
    stops the cycle (the stages already running are waited for)."""
    runnable = [s for s in stages if s.child is not None]
    if serial:
        for stage in runnable:
            start(stage)
        return
    skipped = {s.name for s in stages if s.child is None}
    slots = {s.name: plan.stage(s.name).memory_gib for s in runnable}
    after = {s.name: set(plan.stage(s.name).after) - skipped for s in runnable}
    too_big = [n for n, gib in slots.items() if gib > cap_gib]
    if too_big:
        raise NewsrecError(f"nightly.memory.cap_gib {cap_gib} is below the memory slots of {', '.join(too_big)}")
    done: set[str] = set()
    running: dict[Future, BenchStage] = {}
    waiting = list(runnable)
    with ThreadPoolExecutor(max_workers=len(runnable) or 1, thread_name_prefix="stage") as pool:
        while waiting or running:
            used = sum(slots[s.name] for s in running.values())
            for stage in list(waiting):
                if after[stage.name] <= done and used + slots[stage.name] <= cap_gib:
                    running[pool.submit(start, stage)] = stage
                    used += slots[stage.name]
                    waiting.remove(stage)
            if not running:
                names = ", ".join(s.name for s in waiting)
                raise NewsrecError(f"the nightly plan cannot schedule {names}: an upstream stage never runs")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                stage = running.pop(future)
                error = future.exception()
                if error is not None:
                    wait(running)
                    raise error
                done.add(stage.name)
