"""The one JSON cleaner: what goes into jsonb columns, MLflow artifacts and reports."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any


def json_safe(value: Any) -> Any:
    """Plain JSON values (NaN -> null, numpy/pandas scalars -> Python) so Postgres jsonb takes them."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return finite(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return json_safe(value.item())
    if isinstance(value, date | datetime) or hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
