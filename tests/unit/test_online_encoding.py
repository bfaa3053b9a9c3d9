"""The bulk online write's encoding gives exactly the bytes Feast's own materialize writes: the
serialized entity key, the ValueProto of each value and its value_text, per row, on many values
with nulls, NaN, infinities, signed zeros, denormals, extremes and non-ASCII text."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.types import Float32, Int64, String
from feast.utils import _convert_arrow_to_proto

from pipelines.features import online_encoding as enc

N = 20_000
rng = np.random.default_rng(7)


def _ints(nulls: bool) -> pa.Array:
    edges = [0, 1, -1, 127, 128, 255, 16383, 16384, 2**31 - 1, -(2**31), 2**53 + 1, 2**62 - 3, -(2**62)]
    if not nulls:
        edges += [2**63 - 1, -(2**63), 2**63 - 2]
    values = np.concatenate([np.array(edges, dtype=np.int64), rng.integers(-(2**40), 2**40, N - len(edges))])
    values[len(edges) : len(edges) + 2000] = rng.integers(0, 300, 2000)  # small counts, as most features
    mask = (rng.random(N) < 0.1) if nulls else None
    return pa.array(values, type=pa.int64(), mask=mask)


def _floats() -> pa.Array:
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.17549435e-38, 3.4028235e38, -3.4028235e38]
    edges += [1e-4, 9.999e-5, 1e16, 9.99e15, 1e15, 2.5e16, 0.1, 1 / 3, 1.0, 2.0, 100.0, 123456.789, 16777216.0]
    scales = 10.0 ** rng.integers(-40, 39, N - len(edges))
    values = np.concatenate([np.array(edges), rng.standard_normal(N - len(edges)) * scales]).astype(np.float32)
    values[len(edges) : len(edges) + 3000] = rng.integers(0, 1000, 3000)  # whole numbers (dwell seconds, days)
    values[len(edges) + 3000 : len(edges) + 6000] = rng.random(3000)  # shares and rates
    return pa.array(values, type=pa.float32(), mask=rng.random(N) < 0.05)


def _strings() -> pa.Array:
    words = [
        "",
        "LATAM",
        "AFRICA",
        "NA",
        "sports,politics",
        "ñandú",
        "日本語のニュース",
        "emoji 📰",
        "x" * 127,
        "y" * 128,
    ]
    words += ["z" * 300, "a,b,c" * 50]
    values = [words[i] for i in rng.integers(0, len(words), N)]
    return pa.array(values, type=pa.string(), mask=rng.random(N) < 0.1)


def _view(entities: list[Entity], fields: list[Field]) -> FeatureView:
    source = FileSource(name="src", path="/nonexistent/*.parquet", timestamp_field="event_timestamp")
    return FeatureView(name="v", entities=entities, ttl=timedelta(days=1), schema=fields, source=source)


def _feast_rows(table: pa.Table, view: FeatureView, join_keys: dict[str, ValueType]) -> list[tuple]:
    """(entity key, {feature: (value bytes, value_text)}) per row, the way Feast writes them."""
    rows = []
    for key, values, _, _ in _convert_arrow_to_proto(table, view, join_keys):
        encoded = {name: (v.SerializeToString(), extract_text_and_num(v, False)[0]) for name, v in values.items()}
        rows.append((serialize_entity_key(key, entity_key_serialization_version=3), encoded))
    return rows


def test_values_and_int_keys_match_feast_byte_for_byte():
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    columns = {
        "user_id": pa.array(rng.permutation(np.arange(-(N // 2), N // 2, dtype=np.int64) * 7919)),
        "event_timestamp": pa.array([datetime(2026, 1, 5, tzinfo=UTC)] * N, pa.timestamp("us", tz="UTC")),
        "count_plain": _ints(nulls=False),
        "count_with_nulls": _ints(nulls=True),
        "rate": _floats(),
        "label": _strings(),
        "all_null": pa.nulls(N, pa.float32()),
    }
    table = pa.table(columns)
    dtypes = {"count_plain": Int64, "count_with_nulls": Int64, "rate": Float32, "label": String, "all_null": Float32}
    view = _view([user], [Field(name=k, dtype=t) for k, t in dtypes.items()])
    expected = _feast_rows(table, view, {"user_id": ValueType.INT64})

    keys = enc.entity_keys({"user_id": (table.column("user_id").combine_chunks(), enc.INT64)}).to_list()
    assert keys == [k for k, _ in expected]
    names = {Int64: enc.INT64, Float32: enc.FLOAT, String: enc.STRING}
    for name, dtype in dtypes.items():
        values, text = enc.encode_values(table.column(name).combine_chunks(), names[dtype])
        want_values = [row[name][0] for _, row in expected]
        want_text = [None if row[name][1] is None else row[name][1].encode() for _, row in expected]
        assert values.to_list() == want_values, name
        assert text.to_list() == want_text, name
    # the encodings really cover the cases: empty messages for null/NaN, 10-byte negative varints
    rate_values, _ = enc.encode_values(columns["rate"], enc.FLOAT)
    assert b"" in rate_values.to_list() and b"\x35" + struct.pack("<f", -0.0) in rate_values.to_list()
    assert max(len(v) for v in enc.encode_values(columns["count_plain"], enc.INT64)[0].to_list()) == 11


def test_sorted_multi_keys_with_a_string_key_match_feast():
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    category = Entity(name="category", join_keys=["category"], value_type=ValueType.STRING)
    n = 5000
    cats = ["sports", "", "política", "日本", "c" * 200]
    table = pa.table({
        "user_id": pa.array(rng.integers(-(2**62), 2**62, n)),
        "category": pa.array([cats[i] for i in rng.integers(0, len(cats), n)]),
        "event_timestamp": pa.array([datetime(2026, 1, 5, tzinfo=UTC)] * n, pa.timestamp("us", tz="UTC")),
        "share": _floats().slice(0, n),
    })  # fmt: skip
    view = _view([user, category], [Field(name="share", dtype=Float32)])
    expected = _feast_rows(table, view, {"user_id": ValueType.INT64, "category": ValueType.STRING})
    keys = enc.entity_keys({
        "user_id": (table.column("user_id").combine_chunks(), enc.INT64),
        "category": (table.column("category").combine_chunks(), enc.STRING),
    })  # fmt: skip
    assert keys.to_list() == [k for k, _ in expected]


def test_int_column_with_nulls_out_of_range_fails_like_feast():
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    table = pa.table({
        "user_id": pa.array([1, 2], pa.int64()),
        "event_timestamp": pa.array([datetime(2026, 1, 5, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
        "big": pa.array([2**63 - 1, None], pa.int64()),
    })  # fmt: skip
    with pytest.raises(ValueError):
        _feast_rows(table, _view([user], [Field(name="big", dtype=Int64)]), {"user_id": ValueType.INT64})
    with pytest.raises(ValueError):
        enc.encode_values(table.column("big").combine_chunks(), enc.INT64)


def test_binary_copy_rows_frame_each_field():
    keys = enc.Blobs.from_arrow(pa.array([b"k1", b"key2"], pa.binary()))
    text = enc.Blobs.from_arrow(pa.array(["a", None], pa.string()))
    micros = np.array([946_684_800_000_000 + 1, 946_684_800_000_000 - 1])
    out = enc.copy_rows([enc.copy_field(keys), enc.copy_field(text), enc.copy_timestamps(micros, 2)], 2)
    assert out == (
        b"\x00\x03" + b"\x00\x00\x00\x02k1" + b"\x00\x00\x00\x01a" + b"\x00\x00\x00\x08" + struct.pack(">q", 1)
        + b"\x00\x03" + b"\x00\x00\x00\x04key2" + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x08" + struct.pack(">q", -1)
    )  # fmt: skip
