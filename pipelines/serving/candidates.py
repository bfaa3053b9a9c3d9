"""Candidate generation: the few hundred articles per active user that the ranker scores.

Four sources; when an article comes from several, the first one here names it:

- ``taste``: the user's strongest categories by 28-day dwell share (features of D);
- ``interest``: categories the user declared (the only personal signal of new users);
- ``trending``: the articles most read on D by users of the user's region;
- ``fresh``: a per-user slice of the newest articles, so new stories get a chance.

Never proposed: an article the user already read, an article of a publication flagged for
misinformation, an article outside the recent window. At seed scale (521k users x 200)
the output is ~100M rows, so users are processed in chunks with numpy only; what every user
shares (the article pool, its per-category and per-region ranked lists, recent reads) is
loaded once per day by :mod:`pipelines.serving.candidate_pool`; this module cuts each chunk's
candidates out of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from pipelines.core import hashing
from pipelines.core.errors import ConfigError
from pipelines.serving import candidate_pool

# Public names of the per-day side, importable from here as before the split.
from pipelines.serving.candidate_pool import ArticlePool, CandidateParams, RankedLists, day_bounds, load_pool

log = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("taste", "interest", "trending", "fresh")
_SOURCE_NAMES = np.array(SOURCES, dtype=object)
COLUMNS = ("user_id", "article_id", "source", "category", "publication_id")

__all__ = [
    "COLUMNS",
    "SOURCES",
    "ArticlePool",
    "CandidateParams",
    "RankedLists",
    "day_bounds",
    "CandidateChunk",
    "iter_candidate_arrays",
    "iter_candidate_chunks",
    "load_pool",
]


def iter_candidate_chunks(
    day: date, chunk_users: int = 50_000, part: int = 0, parts: int = 1
) -> Iterator[pd.DataFrame]:
    """Yield candidate frames (user_id, article_id, source, category, publication_id, prior),
    one per chunk of ``chunk_users`` active users, each user wholly inside one chunk; ``prior``
    is the article's popularity prior (log1p dwell on D minus age). With ``parts`` > 1, only
    the users of partition ``part`` (see :func:`pipelines.core.hashing.user_partition`).

    Needs the feature partitions of ``day`` (user activity and user x category shares).
    """
    for chunk in iter_candidate_arrays(day, chunk_users, part, parts):
        yield chunk.frame()


@dataclass
class CandidateChunk:
    """One chunk's candidates as positions, for the scoring kernel (no per-row objects):
    row r proposes pool article ``item[r]`` to user ``user_ids[owner[r]]`` from source
    ``SOURCES[source[r]]``; rows are grouped by ``owner`` (ascending)."""

    pool: ArticlePool
    user_ids: np.ndarray  # the chunk's users, sorted
    owner: np.ndarray
    item: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.owner)

    def frame(self) -> pd.DataFrame:
        arts = self.pool.articles
        item = self.item
        return pd.DataFrame(
            {
                "user_id": self.user_ids[self.owner],
                "article_id": arts["article_id"].to_numpy(np.int64)[item],
                "source": _SOURCE_NAMES[self.source],
                "category": arts["category"].to_numpy(object)[item],
                "publication_id": arts["publication_id"].to_numpy(np.int64)[item],
                "prior": arts["prior"].to_numpy(np.float64)[item],
            },
            copy=False,  # the arrays are fresh; skip pandas' block consolidation (a full copy)
        )


def iter_candidate_arrays(
    day: date, chunk_users: int = 50_000, part: int = 0, parts: int = 1
) -> Iterator[CandidateChunk]:
    """:func:`iter_candidate_chunks` as :class:`CandidateChunk` positions (same rows, same order)."""
    if isinstance(day, datetime):
        day = day.date()
    if chunk_users < 1:
        raise ConfigError("chunk_users must be at least 1")
    if not 0 <= part < parts:
        raise ConfigError(f"partition {part} is not in 0..{parts - 1}")
    p = candidate_pool.CandidateParams.from_params()
    inputs = candidate_pool.load_day_inputs(day, p)
    if inputs.pool.size == 0:
        log.warning("candidates %s: no unflagged articles in the last %s hours", day, p.window_hours)
        return
    users = inputs.users
    if parts > 1:
        users = users[hashing.user_partition(users["user_id"].to_numpy(np.int64), parts) == part]
    for lo in range(0, len(users), chunk_users):
        chunk = _chunk_candidates(users.iloc[lo : lo + chunk_users], inputs, p)
        if len(chunk):
            yield chunk


# --------------------------------------------------------------------------------------
# One chunk, vectorised
# --------------------------------------------------------------------------------------


def _rows_of(sorted_ids: np.ndarray, chunk_ids: np.ndarray) -> tuple[slice, np.ndarray]:
    """Rows of a user-sorted table that belong to the chunk, and their user positions."""
    lo = int(np.searchsorted(sorted_ids, chunk_ids[0], side="left"))
    hi = int(np.searchsorted(sorted_ids, chunk_ids[-1], side="right"))
    ids = sorted_ids[lo:hi]
    pos = np.minimum(np.searchsorted(chunk_ids, ids), len(chunk_ids) - 1)
    return slice(lo, hi), np.where(chunk_ids[pos] == ids, pos, -1)


_KEY_BITS = 63  # bits of the (owner, item, position) key of _first_of_each_article


def _bits(n: int) -> int:
    return max(1, int(n).bit_length())


def _first_of_each_article(owner: np.ndarray, item: np.ndarray, n_users: int = 0) -> np.ndarray:
    """Rows (grouped by owner) that are the first of their (owner, item) pair: one sort of
    64-bit (owner, item, row) keys, so the repeats of a pair sit together, first row first.
    A chunk whose key would not fit is split at an owner boundary (``n_users`` is unused,
    kept for callers)."""
    n = len(owner)
    if n == 0:
        return np.zeros(0, dtype=bool)
    lo_owner = int(owner[0])
    pos_bits, item_bits = _bits(n - 1), _bits(int(item.max()))
    if pos_bits + item_bits + _bits(int(owner[-1]) - lo_owner) > _KEY_BITS and owner[-1] != owner[0]:
        mid = int(np.searchsorted(owner, owner[n // 2], side="left")) or int(
            np.searchsorted(owner, owner[0], side="right")
        )
        return np.concatenate(
            [_first_of_each_article(owner[:mid], item[:mid]), _first_of_each_article(owner[mid:], item[mid:])]
        )
    key = (owner.astype(np.int64) - lo_owner) << (item_bits + pos_bits)
    key |= item.astype(np.int64) << pos_bits
    key |= np.arange(n, dtype=np.int64)
    key.sort()
    pair = key >> pos_bits
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(pair[1:], pair[:-1], out=first[1:])
    keep = np.zeros(n, dtype=bool)
    keep[key[first] & ((1 << pos_bits) - 1)] = True
    return keep


@dataclass
class _Picks:
    owner: np.ndarray  # user position in the chunk
    item: np.ndarray  # article position in the pool
    order: np.ndarray  # rank within its source list


def _expand(lists: RankedLists, seg_list: np.ndarray, take: np.ndarray) -> tuple[np.ndarray, ...]:
    """The first ``take[s]`` items of list ``seg_list[s]`` for every segment s, flattened."""
    seg_rep = np.repeat(np.arange(len(take)), take)
    first = np.cumsum(take) - take
    within = np.arange(int(take.sum()), dtype=np.int64) - first[seg_rep]
    items = lists.items[lists.starts[seg_list[seg_rep]] + within] if len(seg_rep) else seg_rep
    return seg_rep, within, items.astype(np.int64)


def _cut(
    seg_owner: np.ndarray,
    seg_quota: np.ndarray,
    seg_rep: np.ndarray,
    within: np.ndarray,
    items: np.ndarray,
    read_keys: np.ndarray,
    n_articles: int,
) -> _Picks:
    """Drop already-read items, then keep the first ``seg_quota`` of each segment."""
    owner = seg_owner[seg_rep]
    keys = owner * n_articles + items
    if len(read_keys):
        at = np.minimum(np.searchsorted(read_keys, keys), len(read_keys) - 1)
        unread = read_keys[at] != keys
    else:
        unread = np.ones(len(keys), dtype=bool)
    kept_before = np.cumsum(unread) - unread
    counts = np.bincount(seg_rep, minlength=len(seg_owner))
    first = np.cumsum(counts) - counts
    seg_start = np.append(kept_before, 0)[first]
    keep = unread & (kept_before - seg_start[seg_rep] < seg_quota[seg_rep])
    return _Picks(owner[keep], items[keep], within[keep])


def _quotas(
    n: int, has_taste: np.ndarray, has_interest: np.ndarray, trend_len: np.ndarray, p: CandidateParams
) -> dict[str, np.ndarray]:
    """Candidates per user and source; a missing signal's share goes to the others."""
    cap = p.max_per_user
    base_t, base_i = round(cap * p.share_taste), round(cap * p.share_interest)
    base_tr = round(cap * p.share_trending)
    base_f = cap - base_t - base_i - base_tr
    personal = base_t + base_i
    q_taste = np.where(has_taste, np.where(has_interest, base_t, personal), 0)
    q_interest = np.where(has_interest, np.where(has_taste, base_i, personal), 0)
    none = ~has_taste & ~has_interest
    q_trend = base_tr + np.where(none, personal // 2, 0)
    q_fresh = base_f + np.where(none, personal - personal // 2, 0)
    over = np.maximum(q_trend - trend_len, 0)
    return {
        "taste": q_taste.astype(np.int64),
        "interest": q_interest.astype(np.int64),
        "trending": (q_trend - over).astype(np.int64),
        "fresh": (q_fresh + over).astype(np.int64),
    }


def _chunk_candidates(chunk: pd.DataFrame, inputs: candidate_pool.DayInputs, p: CandidateParams) -> CandidateChunk:
    pool = inputs.pool
    n_articles = pool.size
    uid = chunk["user_id"].to_numpy(np.int64)
    n = len(uid)

    rows, read_owner = _rows_of(inputs.reads["user_id"].to_numpy(np.int64), uid)
    read_items = inputs.reads["pos"].to_numpy(np.int64)[rows]
    ok = read_owner >= 0
    read_keys = np.sort(read_owner[ok] * n_articles + read_items[ok])
    # Enough extra items per list to still fill the quota after dropping the user's reads.
    slack = np.minimum(np.bincount(read_owner[ok], minlength=n), 50).astype(np.int64)

    rows, t_owner = _rows_of(inputs.taste["user_id"].to_numpy(np.int64), uid)
    taste = inputs.taste.iloc[rows][t_owner >= 0]
    t_owner = t_owner[t_owner >= 0]
    rows, i_owner = _rows_of(inputs.interests["user_id"].to_numpy(np.int64), uid)
    interest = inputs.interests.iloc[rows][i_owner >= 0]
    i_owner = i_owner[i_owner >= 0]

    region_list = pool.by_region.lookup(chunk["region"].to_numpy(object))
    quotas = _quotas(
        n,
        np.bincount(t_owner, minlength=n) > 0,
        np.bincount(i_owner, minlength=n) > 0,
        pool.by_region.length_of(region_list),
        p,
    )
    picks: list[_Picks] = []

    def from_lists(lists: RankedLists, owner: np.ndarray, list_idx: np.ndarray, quota: np.ndarray) -> _Picks:
        ok = (list_idx >= 0) & (quota > 0)
        owner, list_idx, quota = owner[ok], list_idx[ok], quota[ok]
        take = np.minimum(quota + slack[owner], lists.lengths[list_idx])
        seg_rep, within, items = _expand(lists, list_idx, take)
        return _cut(owner, quota, seg_rep, within, items, read_keys, n_articles)

    # taste: the user's top categories, quota split by dwell share (at least one each)
    t_quota = np.maximum(1, np.floor(quotas["taste"][t_owner] * taste["share"].to_numpy())).astype(np.int64)
    t_quota = np.where(quotas["taste"][t_owner] > 0, t_quota, 0)
    picks.append(from_lists(pool.by_category, t_owner, pool.by_category.lookup(taste["category"].to_numpy()), t_quota))
    # interest: declared categories, quota split evenly
    per_user = np.bincount(i_owner, minlength=n)
    i_quota = -(-quotas["interest"][i_owner] // np.maximum(per_user[i_owner], 1))
    picks.append(
        from_lists(pool.by_category, i_owner, pool.by_category.lookup(interest["category"].to_numpy()), i_quota)
    )
    # trending in the user's region
    picks.append(from_lists(pool.by_region, np.arange(n), region_list, quotas["trending"]))
    # fresh: a window over the newest articles starting at a per-user offset (no duplicates)
    n_fresh = len(pool.fresh)
    if n_fresh:
        quota = quotas["fresh"]
        take = np.where(quota > 0, np.minimum(quota + slack, n_fresh), 0)
        seg_rep = np.repeat(np.arange(n), take)
        first = np.cumsum(take) - take
        within = np.arange(int(take.sum()), dtype=np.int64) - first[seg_rep]
        salt = np.int64(pool.day.toordinal())
        offset = (hashing.splitmix64(uid ^ salt) % np.uint64(n_fresh)).astype(np.int64)
        items = pool.fresh[(offset[seg_rep] + within) % n_fresh]
        picks.append(_cut(np.arange(n), quota, seg_rep, within, items, read_keys, n_articles))
    else:
        picks.append(_Picks(*(np.array([], dtype=np.int64),) * 3))

    owner = np.concatenate([pk.owner for pk in picks])
    item = np.concatenate([pk.item for pk in picks])
    order = np.concatenate([pk.order for pk in picks])
    source = np.concatenate([np.full(len(pk.owner), s, dtype=np.int8) for s, pk in enumerate(picks)])

    # One sort by (user, source priority, rank in source); an article proposed by several
    # sources keeps the first; then at most max_per_user per user.
    priority = (owner.astype(np.int64) << 32) | (source.astype(np.int64) << 28) | np.minimum(order, (1 << 28) - 1)
    sort = np.argsort(priority, kind="stable")
    owner, item, source = owner[sort], item[sort], source[sort]
    first = _first_of_each_article(owner, item, n)
    owner, item, source = owner[first], item[first], source[first]
    counts = np.bincount(owner, minlength=n)
    keep = (np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)) < p.max_per_user
    owner, item, source = owner[keep], item[keep], source[keep]

    return CandidateChunk(pool, uid, owner, item, source)
