"""Feast's online-store encoding, computed per column with numpy and Arrow.

Feast's PostgreSQL online store keeps one row per (entity, feature): the serialized entity key,
the feature's ``ValueProto`` bytes, and ``value_text`` (``str()`` of a number, the string
itself). Feast builds these one Python object at a time (~13 us per value here). This module
produces the same bytes for whole columns at once; ``tests/unit/test_online_encoding.py`` proves
byte equality against Feast's own code on many values, with nulls, NaN and extremes.

Byte layouts (protobuf wire format of ``feast.types.Value``, proto3 oneof: a zero is written):

* int64  -> field 4, varint:  ``0x20`` + varint(value as uint64, 10 bytes when negative)
* float  -> field 6, fixed32: ``0x35`` + float32 little-endian
* string -> field 2, bytes:   ``0x12`` + varint(len) + utf-8
* null or NaN -> the empty message (b"")

Entity keys (``serialize_entity_key``, version 3): ``<u4 count>``, then per join key, sorted by
name, ``<u4 STRING=2><u4 len>name``, then per value ``<u4 type><u4 len>bytes`` (int64: 8 bytes
little-endian; string: utf-8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

INT64, FLOAT, STRING = "int64", "float32", "string"
_VALUE_TYPE = {INT64: 4, STRING: 2}  # feast ValueType numbers used in entity keys
_TAG = {INT64: 0x20, FLOAT: 0x35, STRING: 0x12}


@dataclass
class Blobs:
    """n byte strings in Arrow's layout: ``data[offsets[i]:offsets[i+1]]``; ``null`` marks SQL NULLs
    (their length is 0)."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64, n + 1
    null: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def to_list(self) -> list[bytes | None]:
        raw = self.data.tobytes()
        out: list[bytes | None] = [
            raw[a:b] for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist(), strict=True)
        ]
        if self.null is not None:
            out = [None if n else v for v, n in zip(out, self.null.tolist(), strict=True)]
        return out

    @staticmethod
    def fixed(matrix: np.ndarray) -> Blobs:
        n, width = matrix.shape
        return Blobs(np.ascontiguousarray(matrix, dtype=np.uint8).reshape(-1), np.arange(n + 1, dtype=np.int64) * width)

    @staticmethod
    def const(value: bytes, n: int) -> Blobs:
        row = np.frombuffer(value, dtype=np.uint8)
        return Blobs.fixed(np.broadcast_to(row, (n, len(row))))

    @staticmethod
    def from_arrow(array: Any) -> Blobs:
        """Blobs of an Arrow string/binary array (nulls become NULL)."""
        import pyarrow as pa

        array = array.cast(pa.large_binary()) if not pa.types.is_large_binary(array.type) else array
        _, offsets_buf, data_buf = array.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
        data = data[offsets[0] : offsets[-1]]
        null = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
        return Blobs(data, offsets - offsets[0], null)


def concat(parts: list[Blobs]) -> Blobs:
    """Row-wise concatenation: row i of the result is part0[i] + part1[i] + ..."""
    n = len(parts[0])
    lengths = [p.lengths for p in parts]
    row_len = np.sum(lengths, axis=0) if len(parts) > 1 else lengths[0]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_len, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    start = offsets[:-1].copy()
    for part, length in zip(parts, lengths, strict=True):
        if n and length.min() == length.max():  # the same length in every row: one 2-D assignment
            width = int(length[0])
            if width:
                out[start[:, None] + np.arange(width)] = part.data.reshape(n, width)
        elif len(part.data):
            shift = np.repeat(start - part.offsets[:-1], length)
            out[shift + np.arange(len(part.data))] = part.data
        start += length
    return Blobs(out, offsets)


def varint(values: np.ndarray) -> Blobs:
    """Protobuf base-128 varints of int64 values (two's complement: a negative takes 10 bytes)."""
    u = values.astype(np.int64).view(np.uint64)
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
    groups = ((u[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    nbytes = np.ones(len(u), dtype=np.int64)
    for k in range(1, 10):
        nbytes += u >= (np.uint64(1) << np.uint64(7 * k))
    keep = np.arange(10) < nbytes[:, None]
    more = np.arange(10) < (nbytes - 1)[:, None]
    groups |= more.astype(np.uint8) << 7
    offsets = np.zeros(len(u) + 1, dtype=np.int64)
    np.cumsum(nbytes, out=offsets[1:])
    return Blobs(groups[keep], offsets)


def _empty(n: int) -> Blobs:
    return Blobs(np.empty(0, np.uint8), np.zeros(n + 1, dtype=np.int64))


def _select(blobs: Blobs, present: np.ndarray) -> Blobs:
    """Keep the rows where ``present``; the others become empty (length 0)."""
    if present.all():
        return blobs
    lengths = np.where(present, blobs.lengths, 0)
    keep = np.repeat(present, blobs.lengths)
    offsets = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Blobs(blobs.data[keep], offsets)


def _float_text(values: np.ndarray) -> Blobs:
    """``str(float(x))`` of float32 values widened to double, as Feast writes ``value_text``.

    Arrow's cast prints the same shortest round-trip digits as Python, in other places:
    where its text could differ (an exponent, no decimal point, inf/NaN, or a magnitude where
    Python switches to an exponent) the value is formatted by Python instead."""
    import pyarrow as pa
    import pyarrow.compute as pc

    wide = values.astype(np.float64)
    text = pc.cast(pa.array(wide), pa.string())
    magnitude = np.abs(wide)
    python_form = ~np.isfinite(wide) | ((magnitude != 0) & ((magnitude < 1e-4) | (magnitude >= 1e16)))
    python_form |= pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
    no_point = ~pc.match_substring(text, ".").to_numpy(zero_copy_only=False)
    text = pc.if_else(pa.array(no_point & ~python_form), pc.binary_join_element_wise(text, ".0", ""), text)
    if python_form.any():
        picked = np.flatnonzero(python_form)
        fixed = pa.array([str(v) for v in wide[picked].tolist()], pa.string())
        text = pc.replace_with_mask(text, pa.array(python_form), fixed)
    return Blobs.from_arrow(text)


def encode_values(array: Any, dtype: str) -> tuple[Blobs, Blobs]:
    """(ValueProto bytes, value_text) of one Arrow column, as Feast's materialize writes them.

    Mirrors ``feast.type_map.python_values_to_proto_values`` on the column's ``to_numpy()``:
    null and NaN give the empty message and a NULL text; an int64 column with nulls passes
    through float64 there (so do its values here)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(array)
    if dtype == STRING:
        present = ~array.is_null().to_numpy(zero_copy_only=False)
        utf8 = Blobs.from_arrow(pc.fill_null(array.cast(pa.large_string()), ""))
        body = concat([Blobs.const(bytes([_TAG[STRING]]), n), varint(utf8.lengths), utf8])
        text = Blobs(utf8.data, utf8.offsets, None if present.all() else ~present)
        return _select(body, present), text
    if dtype == FLOAT:
        floats = array.cast(pa.float32()).to_numpy(zero_copy_only=False)
        present = ~np.isnan(floats)
        safe = np.where(present, floats, np.float32(0))
        body = np.empty((n, 5), dtype=np.uint8)
        body[:, 0] = _TAG[FLOAT]
        body[:, 1:] = safe.astype("<f4").view(np.uint8).reshape(n, 4)
        text = _float_text(safe)
        return _select(Blobs.fixed(body), present), _select_text(text, present)
    if dtype == INT64:
        if array.null_count:
            wide = array.to_numpy(zero_copy_only=False)  # float64 with NaN, as Feast sees the column
            present = ~np.isnan(wide)
            if np.any(np.abs(wide[present]) >= 2.0**63):
                raise ValueError("int64 value out of range after Feast's float64 round trip")
            ints = np.where(present, wide, 0).astype(np.int64)
        else:
            ints = array.to_numpy(zero_copy_only=False).astype(np.int64)
            present = np.ones(n, dtype=bool)
        body = concat([Blobs.const(bytes([_TAG[INT64]]), n), varint(ints)])
        text = Blobs.from_arrow(pc.cast(pa.array(ints), pa.string()))
        return _select(body, present), _select_text(text, present)
    raise ValueError(f"no bulk encoding for feature type {dtype!r}")


def _select_text(text: Blobs, present: np.ndarray) -> Blobs:
    if present.all():
        return text
    kept = _select(text, present)
    return Blobs(kept.data, kept.offsets, ~present)


def entity_keys(columns: dict[str, tuple[Any, str]]) -> Blobs:
    """Serialized entity keys (version 3) of join-key columns {name: (Arrow array, dtype)}."""
    import pyarrow as pa

    names = sorted(columns)
    n = len(columns[names[0]][0])
    header = [struct.pack("<I", len(names))]
    for name in names:
        encoded = name.encode()
        header.append(np.array([2, len(encoded)], dtype="<u4").tobytes() + encoded)
    parts = [Blobs.const(b"".join(header), n)]
    for name in names:
        array, dtype = columns[name]
        if array.null_count:
            raise ValueError(f"join key {name} has nulls: Feast cannot serialize such an entity key")
        if dtype == INT64:
            ints = array.to_numpy(zero_copy_only=False).astype("<i8")
            parts.append(Blobs.const(np.array([_VALUE_TYPE[INT64], 8], dtype="<u4").tobytes(), n))
            parts.append(Blobs.fixed(ints.view(np.uint8).reshape(n, 8)))
        elif dtype == STRING:
            utf8 = Blobs.from_arrow(array.cast(pa.large_string()))
            prefix = np.empty((n, 8), dtype=np.uint8)
            prefix[:, :4] = np.frombuffer(struct.pack("<I", _VALUE_TYPE[STRING]), np.uint8)
            prefix[:, 4:] = utf8.lengths.astype("<u4").view(np.uint8).reshape(n, 4)
            parts += [Blobs.fixed(prefix), utf8]
        else:
            raise ValueError(f"no bulk encoding for join key type {dtype!r}")
    return concat(parts)


# PostgreSQL binary COPY: a header, then per row a field count and per field <i4 length> + bytes
# (length -1: NULL), all big-endian; timestamps are microseconds since 2000-01-01 UTC.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000


def copy_field(blobs: Blobs) -> list[Blobs]:
    """A COPY field: its length prefix (-1 for NULL) and its bytes."""
    lengths = blobs.lengths.astype(">i4")
    if blobs.null is not None:
        lengths = np.where(blobs.null, -1, lengths).astype(">i4")
    return [Blobs.fixed(lengths.view(np.uint8).reshape(-1, 4)), blobs]


def copy_timestamps(micros_utc: np.ndarray | None, n: int) -> list[Blobs]:
    """A timestamptz COPY field from epoch microseconds (None: NULL)."""
    if micros_utc is None:
        return [Blobs.const(b"\xff\xff\xff\xff", n)]
    body = np.empty((n, 12), dtype=np.uint8)
    body[:, :4] = np.frombuffer(b"\x00\x00\x00\x08", np.uint8)
    body[:, 4:] = (micros_utc.astype(np.int64) - _PG_EPOCH_US).astype(">i8").view(np.uint8).reshape(n, 8)
    return [Blobs.fixed(body)]


def copy_rows(fields: list[list[Blobs]], n: int) -> bytes:
    """Binary COPY rows (no header) from fields given as ``copy_field``/``copy_timestamps`` parts."""
    count = Blobs.const(struct.pack(">H", len(fields)), n)
    return concat([count, *(p for f in fields for p in f)]).data.tobytes()
