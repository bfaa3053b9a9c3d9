"""The training sample and the feature requests in integer arrays equal the pandas code they
replaced (row for row, in order), on frames the simulator did not shape."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.features.retrieval import first_rows, group_numbers
from pipelines.model.dataset import group_sample, tie_order


def _impressions(rng: np.random.Generator, n: int) -> pd.DataFrame:
    days = [date(2026, 11, 28) + timedelta(days=i) for i in range(3)]
    return pd.DataFrame(
        {
            "event_id": rng.permutation(10 * n)[:n].astype(np.int64) + 7_000_000_000,
            "user_id": rng.integers(0, n // 6 + 1, n) * 1_000_003,  # sparse, large ids
            "day": [days[i] for i in rng.integers(0, 3, n)],
            "is_read": (rng.random(n) < 0.08).astype(np.int64),  # many groups without a read
        }
    )


def _pandas_sample(frame: pd.DataFrame, max_groups: int | None, seed: int) -> pd.DataFrame:
    """The sampling the training data used before (unique keys, DataFrame.sample, merge, sort),
    over the keys in (day, user) order."""
    has_read = frame.groupby(["user_id", "day"])["is_read"].transform("max").astype(bool)
    frame = frame[has_read]
    keys = frame[["user_id", "day"]].drop_duplicates().sort_values(["day", "user_id"])
    if max_groups and len(keys) > max_groups:
        keys = keys.sample(n=max_groups, random_state=seed)
        frame = frame.merge(keys, on=["user_id", "day"])
    frame = frame.assign(_tie=tie_order(frame["event_id"].to_numpy()))
    return frame.sort_values(["day", "user_id", "_tie"], kind="stable").drop(columns="_tie").reset_index(drop=True)


@pytest.mark.parametrize(("n", "max_groups", "seed"), [(5000, 40, 13), (5000, None, 0), (3000, 10_000, 5), (40, 2, 1)])
def test_group_sample_equals_the_pandas_sampling(n: int, max_groups: int | None, seed: int) -> None:
    frame = _impressions(np.random.default_rng(n + seed), n)
    rows = group_sample(frame["user_id"].to_numpy(), frame["day"].to_numpy(), frame["is_read"].to_numpy(),
                        frame["event_id"].to_numpy(), max_groups, seed)  # fmt: skip
    expected = _pandas_sample(frame, max_groups, seed)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(frame.iloc[rows].reset_index(drop=True), expected)


def test_group_sample_does_not_depend_on_the_row_order() -> None:
    frame = _impressions(np.random.default_rng(8), 4000)
    shuffled = frame.sample(frac=1.0, random_state=2).reset_index(drop=True)
    picked = [
        f["event_id"].to_numpy()[group_sample(f["user_id"].to_numpy(), f["day"].to_numpy(), f["is_read"].to_numpy(),
                                              f["event_id"].to_numpy(), 30, 13)]
        for f in (frame, shuffled)
    ]  # fmt: skip
    assert len(picked[0]) > 0 and np.array_equal(picked[0], picked[1])


def test_group_sample_keeps_only_groups_with_a_read_and_at_most_max_groups() -> None:
    frame = _impressions(np.random.default_rng(3), 4000)
    rows = group_sample(frame["user_id"].to_numpy(), frame["day"].to_numpy(), frame["is_read"].to_numpy(),
                        frame["event_id"].to_numpy(), 25, 13)  # fmt: skip
    kept = frame.iloc[rows]
    per_group = kept.groupby(["user_id", "day"])["is_read"].agg(["max", "size"])
    assert len(per_group) == 25 and (per_group["max"] == 1).all()
    everything = frame.groupby(["user_id", "day"]).size()
    assert (per_group["size"] == everything.loc[per_group.index]).all()  # whole groups
    other = group_sample(frame["user_id"].to_numpy(), frame["day"].to_numpy(), frame["is_read"].to_numpy(),
                         frame["event_id"].to_numpy(), 25, 14)  # fmt: skip
    assert set(map(tuple, frame.iloc[other][["user_id", "day"]].to_numpy())) != set(map(tuple, per_group.index))


def test_group_sample_of_no_read_is_empty() -> None:
    frame = _impressions(np.random.default_rng(4), 200).assign(is_read=0)
    assert len(group_sample(frame["user_id"].to_numpy(), frame["day"].to_numpy(), frame["is_read"].to_numpy(),
                            frame["event_id"].to_numpy(), 10, 0)) == 0  # fmt: skip


def test_group_numbers_equal_groupby_ngroup_with_strings_times_and_missing_values() -> None:
    rng = np.random.default_rng(9)
    n = 3000
    times = pd.to_datetime("2026-11-30", utc=True) + pd.to_timedelta(rng.integers(0, 4, n) * 6, unit="h")
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 50, n),
            "category": pd.Series(rng.choice(["news", "sports", "NA", None], n), dtype=object),
            "event_timestamp": times,
        }
    )
    for columns in (["user_id", "event_timestamp"], ["user_id", "category", "event_timestamp"], ["category"]):
        expected = frame.groupby(columns, sort=False, dropna=False).ngroup().to_numpy()
        assert np.array_equal(group_numbers(frame, columns), expected), columns
        assert np.array_equal(first_rows(expected), np.unique(expected, return_index=True)[1]), columns
    assert len(first_rows(np.zeros(0, dtype=np.int64))) == 0
