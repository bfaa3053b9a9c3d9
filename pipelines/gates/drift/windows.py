"""Reference windows of the drift gates: which days a day is compared with, and which of them
have data to compare."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

from pipelines.core.config import params
from pipelines.core.errors import NewsrecError


def default_reference_days(day: date, n: int | None = None) -> list[date]:
    """The ``n`` days before ``day`` (``drift.reference_days`` by default), oldest first."""
    n = int(params("drift")["reference_days"]) if n is None else n
    return [day - timedelta(days=i) for i in range(n, 0, -1)]


def reference_range(first: date, last: date) -> list[date]:
    """Every day in [first, last]."""
    if last < first:
        raise NewsrecError(f"--reference-to {last} is before --reference-from {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def describe_days(days: Sequence[date]) -> str:
    """``a..b`` for a contiguous window, else the count and the span."""
    if not days:
        return "no reference"
    days = sorted(days)
    contiguous = (days[-1] - days[0]).days == len(days) - 1
    if len(days) == 1:
        return str(days[0])
    return f"{days[0]}..{days[-1]}" if contiguous else f"{len(days)} days {days[0]}..{days[-1]}"


def available_reference(
    day: date, wanted: Sequence[date], has_data: Callable[[date], bool]
) -> tuple[list[date], list[str]]:
    """Reference days that have data; missing ones become warnings, too few an error."""
    wanted = sorted(set(wanted))
    warnings: list[str] = []
    if day in wanted:
        warnings.append(f"the reference includes {day} itself")
    used = [d for d in wanted if has_data(d)]
    missing = [d for d in wanted if d not in used]
    if missing:
        warnings.append(f"no data for reference day(s) {', '.join(map(str, missing))}; compared without them")
    minimum = max(1, int(params("drift")["min_reference_days"]))
    if len(used) < minimum:
        raise NewsrecError(
            f"drift of {day} needs at least {minimum} reference day(s) with data; "
            f"found {len(used)} of {len(wanted)} ({describe_days(wanted)})"
        )
    return used, warnings
