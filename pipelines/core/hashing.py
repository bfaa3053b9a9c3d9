"""The project's stable hashes, in one place: experiment arms, tie order and scoring partitions.

All are vectorised numpy over uint64 and fixed forever: changing one would move users between
experiment arms, reorder tied impressions (and with them training and evaluation) or move
users between scoring partitions. Python's ``hash()`` is salted per process, so it is never
used. ``tests/unit/test_hashing.py`` pins their values.
"""

from __future__ import annotations

import hashlib

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijection of uint64 with full avalanche."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        return x ^ (x >> np.uint64(31))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """One splitmix64 step (add the golden gamma, then finalise) of integer ids."""
    with np.errstate(over="ignore"):
        return mix64(np.asarray(x).astype(np.uint64) + GOLDEN)


def text_key(text: str) -> np.uint64:
    """A 64-bit key of a text (blake2b), to salt a hash by name."""
    return np.uint64(int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little"))


def unit_hash(user_ids: np.ndarray, key: str) -> np.ndarray:
    """A number in [0, 1) per user id, uniform and independent across keys (experiment cohorts
    and arms)."""
    ids = np.asarray(user_ids, dtype=np.int64).astype(np.uint64)
    x = splitmix64(mix64(ids ^ text_key(key)))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def tie_order(event_id: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random order of impressions (a multiplicative hash of the event id); see
    :func:`pipelines.model.dataset.tie_order` for why ties must not follow the slate."""
    ids = np.asarray(event_id, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        return ((ids * GOLDEN) >> np.uint64(11)).astype(np.int64)


def user_partition(user_ids: np.ndarray, parts: int) -> np.ndarray:
    """The scoring partition (0..parts-1) of each user: the same partition for a given count,
    and partitions come out even."""
    return (splitmix64(np.asarray(user_ids, dtype=np.int64)) % np.uint64(parts)).astype(np.int64)
