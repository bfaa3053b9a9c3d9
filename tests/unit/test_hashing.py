"""The stable hashes keep their values bit for bit (pinned from the code before they were
gathered in pipelines.core.hashing): arms, tie order and scoring partitions must never move."""

import numpy as np

from pipelines.core import hashing

IDS = np.array([0, 1, 42, 521_000, 2**40 + 7], dtype=np.int64)


def test_unit_hash_is_pinned():
    assert hashing.unit_hash(IDS, "exp-1/arm").tolist() == [
        0.730573285634252, 0.7752834171053428, 0.9207667114319679, 0.43747791739046793, 0.26023088842187925,
    ]  # fmt: skip


def test_tie_order_is_pinned():
    assert hashing.tie_order(IDS).tolist() == [
        0,
        5566755282872655,
        8623740512126731,
        6378346327801802,
        5559187200237868,
    ]


def test_user_partition_is_pinned():
    assert hashing.user_partition(IDS, 7).tolist() == [2, 2, 5, 4, 0]


def test_splitmix64_is_pinned():
    assert hashing.splitmix64(IDS ^ np.int64(12345)).tolist() == [
        2454886589211414944, 18133564086679993456, 13072338509817039314, 3014658845853072924, 4802310084594632953,
    ]  # fmt: skip


def test_unit_hash_keys_are_independent():
    many = np.arange(20_000, dtype=np.int64)
    a, b = hashing.unit_hash(many, "k1"), hashing.unit_hash(many, "k2")
    assert 0 <= a.min() and a.max() < 1
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05
