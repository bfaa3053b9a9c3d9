"""dataset.subsample: a seeded sample of whole query groups, in their order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.model.dataset import Split, subsample


def _split(sizes: list[int]) -> Split:
    gid = np.repeat(np.arange(len(sizes)), sizes)
    rows = pd.DataFrame({"group": gid, "row": np.arange(len(gid))})
    return Split(rows, rows[["row"]].astype(float), gid.astype(np.int32), np.asarray(sizes))


def test_subsample_keeps_whole_groups_in_order_and_is_seeded():
    split = _split([3, 1, 4, 1, 5, 9, 2, 6])
    part = subsample(split, 3, seed=7)
    assert part.n_groups == 3 and int(part.groups.sum()) == len(part.y) == len(part.rows) == len(part.X)
    kept = part.rows["group"].to_numpy()
    assert np.all(np.diff(kept) >= 0)  # the split's order
    assert [int(n) for n in part.groups] == [int((kept == g).sum()) for g in dict.fromkeys(kept)]
    assert [int(n) for n in part.groups] == [[3, 1, 4, 1, 5, 9, 2, 6][g] for g in dict.fromkeys(kept)]
    assert np.array_equal(part.X["row"].to_numpy(), part.rows["row"].to_numpy())
    again = subsample(split, 3, seed=7)
    assert np.array_equal(again.rows["row"].to_numpy(), part.rows["row"].to_numpy())
    other = [tuple(subsample(split, 3, seed=s).rows["group"].unique()) for s in range(8)]
    assert len(set(other)) > 1  # the seed decides which groups


def test_subsample_of_no_more_groups_than_asked_is_the_split_itself():
    split = _split([2, 2])
    assert subsample(split, 2, seed=0) is split and subsample(split, 0, seed=0) is split
