"""The bulk export's line format (NDJSON): one JSON object per user, in user id order.

    {"user_id": 17, "batch_id": 42, "model_version": "7", "items": [{"rank": 1, "article_id": 9051,
     "score": 0.8125, "reason": "Because you read Sports"}, ...]}

The reader's ``GET /v1/recommendations/export`` and ``newsrec serve export --format jsonl``
both write their lines with :class:`UserLines`, so the same batch gives the same bytes by
either path. Standard library only: the reader imports it from here (interfaces import
serving, never the other way), and so does :mod:`pipelines.serving.export`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from typing import Any

MEDIA_TYPE = "application/x-ndjson"
_FLOAT32 = struct.Struct("<f")
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def float32_value(x: float) -> float:
    """The shortest decimal that is the same float32 as ``x``. Scores are stored as ``real``:
    asyncpg hands over their exact value (0.8999999761581421), psycopg2 a decimal (0.9); both
    become 0.9 here, so the two paths agree to the byte."""
    packed = _FLOAT32.pack(x)
    for digits in (6, 7, 8):  # any float32 survives 9 significant digits
        shorter = float(f"{x:.{digits}g}")
        if _FLOAT32.pack(shorter) == packed:
            return shorter
    return float(f"{x:.9g}")


class UserLines:
    """Turns rows ``(user_id, rank, article_id, score, reason)``, ordered by user id and rank,
    into one line per user. Rows may come in chunks of any size: a user whose rows continue in
    the next chunk is held back until the user changes (or :meth:`close`)."""

    def __init__(self, batch_id: int, model_version: str) -> None:
        self.batch_id = int(batch_id)
        self.model_version = str(model_version)
        self.users = 0
        self.rows = 0
        self._user: int | None = None
        self._items: list[dict[str, Any]] = []

    def feed(self, rows: Iterable[Sequence[Any]]) -> bytes:
        """The lines of the users completed by these rows (possibly none: b"")."""
        out: list[bytes] = []
        items = self._items
        for user_id, rank, article_id, score, reason in rows:
            if user_id != self._user:
                if self._user is not None:
                    out.append(self._line())
                self._user = user_id
                items = self._items = []
            items.append({"rank": rank, "article_id": article_id, "score": float32_value(score), "reason": reason})
            self.rows += 1
        return b"".join(out)

    def close(self) -> bytes:
        """The last user's line (b"" when no row came)."""
        if self._user is None:
            return b""
        line = self._line()
        self._user, self._items = None, []
        return line

    def _line(self) -> bytes:
        self.users += 1
        record = {
            "user_id": self._user,
            "batch_id": self.batch_id,
            "model_version": self.model_version,
            "items": self._items,
        }
        return _ENCODE(record).encode("utf-8") + b"\n"
