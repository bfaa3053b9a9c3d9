"""When and on what a benchmark ran: one stamp for every results file."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from typing import Any


def measured(**machine: Any) -> dict[str, Any]:
    """``measured_at`` and ``machine`` (cores, Python, the 1-minute load: shared machines say how
    busy they were), plus the caller's own machine facts."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            **machine,
        },
    }
