"""The drift reference window: the days tonight's data is compared with.

The champion's own training window when there is one (drift means "different from what the
model learned on"), else the ``drift.reference_days`` days before the date. The nightly drift
stage and ``newsrec check drift`` both take their default from here.
"""

from __future__ import annotations

from datetime import date

from pipelines.gates import drift
from pipelines.model import registry


def drift_reference(day: date) -> list[date]:
    """The champion's training window as of ``day``, else the days before ``day``."""
    info = registry.champion_as_of(day)
    window = (info or {}).get("tags", {}).get("data_window")
    if window:
        first, last = (date.fromisoformat(x) for x in window.split(".."))
        return drift.reference_range(first, last)
    return drift.default_reference_days(day)
