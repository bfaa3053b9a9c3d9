"""Named SQL queries kept as files in ``sql/queries``; parameters are bound by the driver."""

from __future__ import annotations

from functools import cache

from pipelines.core.config import get_settings
from pipelines.core.errors import NewsrecError


@cache
def load(name: str) -> str:
    path = get_settings().sql_dir / "queries" / f"{name}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NewsrecError(f"no named query {name!r} in {path.parent}") from None
