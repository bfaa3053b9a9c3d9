"""Feature partitions on disk: one Parquet file per view and day, written atomically.

Layout under ``$NEWSREC_HOME/features``::

    <view>/<YYYY-MM-DD>.parquet        what Feast's offline store reads (glob *.parquet)
    _daily/<kind>/<YYYY-MM-DD>.parquet daily partials the 28-day windows are rolled up from
    _manifests/<YYYY-MM-DD>.json       present only when every view of that day is complete

A day is published by removing its manifest, moving each staged file into place, then
writing the manifest again: readers that require the manifest never see a mix of old and
new views, and a crash leaves the day without a manifest until a re-run completes it.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core.config import get_settings
from pipelines.core.errors import NewsrecError
from pipelines.core.faults import checkpoint
from pipelines.features.catalog import ENTITY_KEYS, FEATURES, TIMESTAMP, VIEWS


def root() -> Path:
    return get_settings().features_dir


def view_path(view: str, day: date) -> Path:
    return root() / view / f"{day.isoformat()}.parquet"


def partial_path(kind: str, day: date) -> Path:
    return root() / "_daily" / kind / f"{day.isoformat()}.parquet"


def manifest_path(day: date) -> Path:
    return root() / "_manifests" / f"{day.isoformat()}.json"


_ARROW_TYPES = {"int64": "int64", "float32": "float32", "float64": "float64", "string": "string", "object": "string"}


def arrow_schema(columns: dict[str, str]) -> Any:
    """A pyarrow schema from {column: dtype name}; timestamps are UTC microseconds.

    Writing with an explicit schema matters for empty partitions: pyarrow would otherwise
    type an empty string column as null, and DuckDB then refuses to join on it."""
    import pyarrow as pa

    def arrow(dtype: str) -> Any:
        if dtype == "timestamp":
            return pa.timestamp("us", tz="UTC")
        return pa.type_for_alias(_ARROW_TYPES[dtype])

    return pa.schema([(name, arrow(dtype)) for name, dtype in columns.items()])


def view_schema(view: str) -> Any:

    columns = {ENTITY_KEYS[e][0]: ENTITY_KEYS[e][1] for e in VIEWS[view].entities}
    columns[TIMESTAMP] = "timestamp"
    columns.update({f.name: f.dtype for f in FEATURES if f.view == view})
    return arrow_schema(columns)


def write_parquet_atomic(frame: pd.DataFrame, path: Path, schema: Any = None) -> int:
    """Write a file under a hidden temporary name, then rename it over the target."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(frame)


def read_manifest(day: date) -> dict[str, Any] | None:
    try:
        return json.loads(manifest_path(day).read_text())
    except FileNotFoundError:
        return None


def publish_day(day: date, staged: dict[str, Path], details: dict[str, Any]) -> dict[str, Any]:
    """Move staged view files of ``day`` into place and write its manifest last."""
    manifest = manifest_path(day)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)
    for i, (view, src) in enumerate(staged.items()):
        if i == 1:
            checkpoint("features_publish")  # some views replaced, others not, no manifest
        dst = view_path(view, day)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
    body = {
        "day": day.isoformat(),
        "written_at": datetime.now(UTC).isoformat(),
        "views": {view: str(view_path(view, day)) for view in staged},
        **details,
    }
    tmp = manifest.parent / f".{manifest.name}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(body, indent=2, default=str))
    os.replace(tmp, manifest)
    return body


def require_day(day: date) -> dict[str, Any]:
    """The manifest of a complete day, or a clear error."""
    body = read_manifest(day)
    if body is None:
        raise NewsrecError(f"features for {day} are missing or incomplete; run `newsrec features build --date {day}`")
    return body


def read_view(view: str, day: date, columns: list[str] | None = None) -> pd.DataFrame:
    require_day(day)
    return pd.read_parquet(view_path(view, day), columns=columns)
