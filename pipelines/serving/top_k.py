"""Each user's top k with the category cap, on a chunk's candidate positions: the same lists as
:func:`pipelines.serving.selection.select_top` (score desc at float32, ties to the lower
article id, greedy cap per category), with one sort of short rows and no loop over users.

Why it can be done without the greedy loop: walking a user's candidates in score order and
skipping an item whose category already has ``cap`` picks never skips anything else, so the
items the walk picks are the first ``k`` (in score order) of the items that rank below ``cap``
within their own category. So:

1. the chunk becomes one row of 64-bit keys per user: the category code, then the score's
   order-preserving float32 bits, then the article's pool position (the pool is in article id
   order, so this breaks ties like the article id), then the source; keys are unique within
   a row (a user's candidates are distinct articles);
2. each row is sorted: a user's candidates, category by category, best first;
3. an entry is among its category's first ``cap`` when the entry ``cap`` places before it
   has another category (one shifted comparison);
4. the survivors' keys without the category bits, the ``k`` smallest per row (a partition of
   each row, then a sort of those ``k``), are the list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.core.errors import NewsrecError

_PAD = np.uint64(0xFFFFFFFFFFFFFFFF)
_SOURCE_BITS = 2
_SCORE_BITS = 32
_FREE_BITS = 64 - _SCORE_BITS - _SOURCE_BITS  # shared by the category code and the pool position


@dataclass
class TopK:
    """Selected rows in (user, rank) order: user position, rank 1..k, pool position, source
    code and the float32 score."""

    owner: np.ndarray
    rank: np.ndarray
    item: np.ndarray
    source: np.ndarray
    score: np.ndarray


def _bits(n: int) -> int:
    """Bits that hold the codes 0..n-1."""
    return max(1, int(n - 1).bit_length())


def supported(scores: np.ndarray, source: np.ndarray, pool_size: int, n_categories: int = 1) -> bool:
    """False where the keys cannot hold the rows exactly: a pool and a category count too large
    for the key together, more than four sources, or a -0.0 score (its key is 0.0's; the
    reference keeps -0.0 in the output)."""
    if _bits(pool_size) + _bits(n_categories) > _FREE_BITS:
        return False
    if len(source) and int(source.max()) >= 1 << _SOURCE_BITS:
        return False
    s32 = scores.astype(np.float32)
    return not bool(np.any((s32 == 0) & np.signbit(s32)))


def capped_top_k(
    owner: np.ndarray,
    item: np.ndarray,
    source: np.ndarray,
    scores: np.ndarray,
    category: np.ndarray,
    n_users: int,
    k: int,
    max_per_category: int,
) -> TopK:
    """``owner`` grouped ascending, each user's ``item`` distinct; ``category`` is a code
    (0..n-1) per pool position. Rows with a NaN score are ignored."""
    if k < 1 or max_per_category < 1:
        raise NewsrecError("k and max_per_category must be at least 1")
    pool_size = len(category)
    n_cat = int(category.max(initial=0)) + 1
    item_bits = _bits(pool_size)
    if item_bits + _bits(n_cat) > _FREE_BITS:
        raise NewsrecError("pool and categories too large for the top-k key (see supported)")
    low_bits = _SCORE_BITS + item_bits + _SOURCE_BITS  # the key below the category code
    s32 = scores.astype(np.float32)
    nan = np.isnan(s32)
    if nan.any():
        keep = ~nan
        owner, item, source, s32 = owner[keep], item[keep], source[keep], s32[keep]
    if len(owner) == 0:
        return _empty()
    s32 += np.float32(0)  # -0.0 -> 0.0, as the reference's sort key
    bits = s32.view(np.uint32)
    # descending order of the float32 scores as unsigned integers (the reference's key, negated)
    descending = np.where(bits & np.uint32(0x80000000), bits, ~(bits | np.uint32(0x80000000)))
    key = category.astype(np.uint64)[item]
    key <<= np.uint64(_SCORE_BITS)
    key |= descending
    key <<= np.uint64(item_bits)
    key |= item.astype(np.uint64)
    key <<= np.uint64(_SOURCE_BITS)
    key |= source.astype(np.uint64)
    del descending, bits, s32
    counts = np.bincount(owner, minlength=n_users)
    width = int(counts.max())
    starts = np.cumsum(counts) - counts
    grid = np.full((n_users, width), _PAD, dtype=np.uint64)
    flat = np.arange(len(owner), dtype=np.int64)
    flat += owner * width - starts[owner]  # row owner, column = position within the owner
    grid.ravel()[flat] = key
    del flat, key
    grid.sort(axis=1)  # per user: category by category, best first; padding last
    low = grid & np.uint64((1 << low_bits) - 1)
    if width > max_per_category:
        # entries with the same category ``cap`` places before them are beyond the cap
        cat = grid >> np.uint64(low_bits)
        beyond = cat[:, max_per_category:] == cat[:, :-max_per_category]
        low[:, max_per_category:][beyond] = _PAD
    low[grid == _PAD] = _PAD
    del grid
    if width > k:
        low = np.partition(low, k - 1, axis=1)[:, :k]
    low.sort(axis=1)
    rows_u, ranks = np.nonzero(low != _PAD)  # row-major: users ascending, each in rank order
    return _decode(rows_u, ranks, low[rows_u, ranks], item_bits)


def _decode(rows_u: np.ndarray, ranks: np.ndarray, keys: np.ndarray, item_bits: int) -> TopK:
    source = (keys & np.uint64((1 << _SOURCE_BITS) - 1)).astype(np.int8)
    item = ((keys >> np.uint64(_SOURCE_BITS)) & np.uint64((1 << item_bits) - 1)).astype(np.int64)
    desc = (keys >> np.uint64(_SOURCE_BITS + item_bits)).astype(np.uint32)
    ascending = ~desc
    bits = np.where(ascending & np.uint32(0x80000000), ascending & np.uint32(0x7FFFFFFF), ~ascending)
    score = bits.astype(np.uint32).view(np.float32)
    return TopK(rows_u.astype(np.int64), (ranks + 1).astype(np.int16), item, source, score)


def _empty() -> TopK:
    z = np.zeros(0, dtype=np.int64)
    return TopK(z, z.astype(np.int16), z, z.astype(np.int8), z.astype(np.float32))
