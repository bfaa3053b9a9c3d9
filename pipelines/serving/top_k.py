"""Each user's top k with the category cap, on a chunk's candidate positions: the same lists as
:func:`pipelines.serving.selection.select_top` (score desc at float32, ties to the lower
article id, greedy cap per category), without sorting the whole chunk.

A user has at most a few hundred candidates, so the chunk becomes one row of 64-bit keys per
user: the score's order-preserving float32 bits, then the article's pool position (the pool
is in article id order, so this breaks ties like the article id), then the source. Keys are
unique within a row, so the ``head`` smallest keys of a row (``np.partition``) are exactly
the first ``head`` candidates in score order; the greedy cap runs on those. A user whose list
is not full within the head is done again over all of their candidates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pipelines.core.errors import NewsrecError

log = logging.getLogger(__name__)

HEAD = 48
_PAD = np.uint64(0xFFFFFFFFFFFFFFFF)
_ITEM_BITS = 30


@dataclass
class TopK:
    """Selected rows in (user, rank) order: user position, rank 1..k, pool position, source
    code and the float32 score."""

    owner: np.ndarray
    rank: np.ndarray
    item: np.ndarray
    source: np.ndarray
    score: np.ndarray


def supported(scores: np.ndarray, source: np.ndarray, pool_size: int) -> bool:
    """False where the keys cannot hold the rows exactly: a pool too large for the key, more
    than four sources, or a -0.0 score (its key is 0.0's; the reference keeps -0.0 in the output)."""
    s32 = scores.astype(np.float32)
    if pool_size >= (1 << _ITEM_BITS) or (len(source) and int(source.max()) > 3):
        return False
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
    """``owner`` grouped ascending; ``category`` is a code per pool position. Rows with a NaN score are ignored."""
    if k < 1 or max_per_category < 1:
        raise NewsrecError("k and max_per_category must be at least 1")
    s32 = scores.astype(np.float32)
    nan = np.isnan(s32)
    if nan.any():
        keep = ~nan
        owner, item, source, s32 = owner[keep], item[keep], source[keep], s32[keep]
    s32 += np.float32(0)  # -0.0 -> 0.0, as the reference's sort key
    bits = s32.view(np.uint32)
    # descending order of the float32 scores as unsigned integers (the reference's key, negated)
    descending = np.where(bits & np.uint32(0x80000000), bits, ~(bits | np.uint32(0x80000000)))
    key = descending.astype(np.uint64)
    key <<= np.uint64(32)
    low = item.view(np.uint64) << np.uint64(2)  # positions are >= 0
    low |= source.astype(np.uint8)
    key |= low
    del low, descending, bits, s32
    counts = np.bincount(owner, minlength=n_users)
    width = int(counts.max(initial=0))
    if width == 0:
        return _empty()
    starts = np.cumsum(counts) - counts
    grid = np.full((n_users, width), _PAD, dtype=np.uint64)
    flat = np.arange(len(owner), dtype=np.int64)
    flat += owner * width - starts[owner]  # row owner, column = position within the owner
    grid.ravel()[flat] = key
    del flat, key
    head = min(HEAD, width)
    first = grid if head == width else np.partition(grid, head - 1, axis=1)[:, :head]
    first.sort(axis=1)
    chosen = _greedy(first, category, k, max_per_category)
    redo = np.flatnonzero((chosen.sum(axis=1) < k) & (counts > head))
    log.debug("capped top %d: %d of %d users beyond the first %d candidates", k, len(redo), n_users, head)
    rows_u, cols = np.nonzero(chosen)
    picked = first[rows_u, cols]
    if len(redo):
        full = np.sort(grid[redo], axis=1)
        again = _greedy(full, category, k, max_per_category)
        r2, c2 = np.nonzero(again)
        done = ~np.isin(rows_u, redo)
        rows_u = np.concatenate([rows_u[done], redo[r2]])
        picked = np.concatenate([picked[done], full[r2, c2]])
        order = np.argsort(rows_u, kind="stable")  # rows of one user stay in rank order
        rows_u, picked = rows_u[order], picked[order]
    return _decode(rows_u, picked)


def _greedy(sorted_keys: np.ndarray, category: np.ndarray, k: int, cap: int) -> np.ndarray:
    """Which entries of each row (sorted keys) the greedy cap selects, as a boolean grid: an
    entry's category rank counts every earlier entry of its category, as in select_top."""
    valid = sorted_keys != _PAD
    items = ((sorted_keys >> np.uint64(2)) & np.uint64((1 << _ITEM_BITS) - 1)).astype(np.int64)
    n_cat = int(category.max(initial=0)) + 2  # the last code: padding
    cats = np.where(valid, category[np.where(valid, items, 0)], n_cat - 1)
    # each entry's rank among the earlier entries of its row with its category: a stable
    # sort of the (small) category codes inside each row, then positions within the runs
    by_cat = np.argsort(cats.astype(np.uint16 if n_cat > 255 else np.uint8), axis=1, kind="stable")
    grouped = np.take_along_axis(cats, by_cat, axis=1)
    idx = np.broadcast_to(np.arange(cats.shape[1], dtype=np.int32), cats.shape)
    run_start = np.ones(cats.shape, dtype=bool)
    np.not_equal(grouped[:, 1:], grouped[:, :-1], out=run_start[:, 1:])
    within = idx - np.maximum.accumulate(np.where(run_start, idx, 0), axis=1)
    cat_rank = np.empty(cats.shape, dtype=np.int32)
    np.put_along_axis(cat_rank, by_cat, within, axis=1)
    allowed = valid & (cat_rank < cap)
    return allowed & (np.cumsum(allowed, axis=1, dtype=np.int32) <= k)


def _decode(rows_u: np.ndarray, keys: np.ndarray) -> TopK:
    desc = (keys >> np.uint64(32)).astype(np.uint32)
    ascending = ~desc
    bits = np.where(ascending & np.uint32(0x80000000), ascending & np.uint32(0x7FFFFFFF), ~ascending)
    low = keys & np.uint64(0xFFFFFFFF)
    item = (low >> np.uint64(2)).astype(np.int64)
    source = (low & np.uint64(3)).astype(np.int8)
    starts = np.flatnonzero(np.r_[True, rows_u[1:] != rows_u[:-1]]) if len(rows_u) else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, len(rows_u)])
    rank = (np.arange(len(rows_u)) - np.repeat(starts, lengths) + 1).astype(np.int16)
    return TopK(rows_u.astype(np.int64), rank, item, source, bits.astype(np.uint32).view(np.float32))


def _empty() -> TopK:
    z = np.zeros(0, dtype=np.int64)
    return TopK(z, z.astype(np.int16), z, z.astype(np.int8), z.astype(np.float32))
