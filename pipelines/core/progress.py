"""Progress bars for long steps, one way: tqdm on a terminal, silent in logs and under Airflow.

``disable=None`` is tqdm's "only when writing to a TTY", so a multi-day backfill or a training
run shows where it is to a person and prints nothing into task logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm


def bar(total: int | None, desc: str, unit: str = "it") -> tqdm:
    """A progress bar on stderr when it is a terminal; a no-op otherwise."""
    return tqdm(total=total, desc=desc, unit=unit, disable=None, leave=False, dynamic_ncols=True)


def boosting_callback(progress: tqdm) -> Callable[[Any], None]:
    """A LightGBM callback that advances ``progress`` by one tree per boosting round."""

    def advance(env: Any) -> None:
        progress.update(1)
        if env.evaluation_result_list:
            _, metric, value, _ = env.evaluation_result_list[0][:4]
            progress.set_postfix_str(f"{metric} {value:.4f}", refresh=False)

    advance.order = 40  # after early stopping (30): a stopped round is not counted twice
    return advance
