"""Frames in the dtypes Great Expectations' pandas engine handles fast, with the same values.

- float32 is widened to float64 (exact, so every comparison and every value shown is the same):
  GE's between check is vectorized on int and float64 columns only and calls a Python function
  per value otherwise (~40 s of a seed-scale features stage).
- Text columns of few distinct values become categoricals: GE selects rows of the whole frame
  several times per check, and a text column costs a reference count per row on every select,
  a null test per row on every null check. A column of many values (timestamps as text, free
  text) stays text: its categories would cost more than they save.

:func:`read_parquet` reads a feature partition straight into those dtypes in Arrow (the cast
and the dictionary decoding are Arrow's, in C, and the frame comes out consolidated), so
:func:`cheap_dtypes` finds nothing left to change: at seed scale, rebuilding the 5.5 M feature
rows in pandas after reading them cost ~2 s of the stage. :func:`cheap_dtypes` stays for frames
that come from elsewhere (the raw extract).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_FEW = 256  # distinct values at most for a text column to become categorical


def cheap_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with float32 widened and text of few distinct values (in a strided sample of
    4,096 rows) as categoricals. Built in one go, so the columns are consolidated by dtype
    (pandas would merge scattered columns again on every select); the frame itself when there
    is nothing to change."""
    import pandas as pd

    columns = {name: _cheap(series) for name, series in frame.items()}
    if all(columns[name] is series for name, series in frame.items()):
        return frame
    return pd.DataFrame(columns, index=frame.index)


def _cheap(series: pd.Series) -> pd.Series:
    if series.dtype == "float32":
        return series.astype("float64")
    if series.dtype == object and len(series):
        sample = series.iloc[:: max(1, len(series) // 4096)]
        if sample.nunique(dropna=True) <= _FEW:
            return series.astype("category")
    return series


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The parquet file at ``path`` as pandas reads it (``pd.read_parquet``), in the dtypes of
    :func:`cheap_dtypes`: float32 read as float64, text of at most ``_FEW`` distinct values as
    categoricals (their categories the values present, sorted, as ``astype("category")`` gives),
    other text as Python strings."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    names = columns if columns is not None else schema.names
    text = [n for n in names if pa.types.is_string(schema.field(n).type)]
    table = pq.read_table(path, columns=columns, read_dictionary=text).unify_dictionaries()
    for i, field in enumerate(table.schema):
        if pa.types.is_float32(field.type):
            table = table.set_column(i, field.name, pc.cast(table.column(i), pa.float64()))
        elif field.name in text:
            table = table.set_column(i, field.name, _categories(table.column(i), schema.field(field.name).type))
    return table.to_pandas()


def _categories(column: pa.ChunkedArray, plain: pa.DataType) -> pa.Array:
    """A dictionary column with only the values present, sorted, as its dictionary; decoded to
    ``plain`` text when it has more than ``_FEW`` of them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    indices = array.indices
    used = pc.unique(pc.drop_null(indices))
    if len(used) > _FEW:
        return pc.cast(array, plain)
    values = array.dictionary.take(used)
    order = pc.sort_indices(values).to_numpy()
    rank = np.zeros(len(array.dictionary), dtype=np.int32)
    rank[used.to_numpy()[order]] = np.arange(len(order), dtype=np.int32)
    codes = rank[pc.fill_null(indices, 0).to_numpy(zero_copy_only=False)]
    mask = pc.is_null(indices).to_numpy(zero_copy_only=False) if indices.null_count else None
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask), values.take(pa.array(order)))
