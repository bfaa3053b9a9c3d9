"""Training and scoring under a data profile, on the shared trained world (simulator: dwell,
regions and positions). A profile other than the full one is stored only inside a test and
the world's own is put back, so the other tests see the simulator's warehouse unchanged."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from pipelines.core import db
from pipelines.core.errors import NewsrecError
from pipelines.features import matrix
from pipelines.model import dataset, registry
from pipelines.warehouse import profile as data_profile
from pipelines.warehouse.profile import DataProfile
from tests.model.conftest import DAY


@contextlib.contextmanager
def stored(profile: DataProfile) -> Iterator[None]:
    """``profile`` stored in the world's warehouse for the block, then the world's one again."""
    before = data_profile.current()
    with db.transaction() as conn:
        data_profile.save(conn, profile, set_by="a test")
    try:
        yield
    finally:
        with db.transaction() as conn:
            data_profile.save(conn, before)


def test_a_dwell_less_profile_trains_on_click_labels_without_dwell_or_region_features(world):
    full, full_spec = dataset.load_split(DAY, DAY)  # the world's stored profile: the simulator's
    assert full_spec.profile["source"] == "simulator" and full_spec.feature_names == matrix.ALL_FEATURES
    assert full.y.max() == 3  # dwell grades (0 .. 3 with two bands)
    clicks = DataProfile(source="clicks only", dwell=False, regions=False)
    split, spec = dataset.load_split(DAY, DAY, profile=clicks)
    assert set(split.y.tolist()) == {0, 1}
    assert not [c for c in split.X.columns if "dwell" in c or "region" in c]
    assert list(split.X.columns) == list(matrix.current_feature_names(clicks)) == list(spec.feature_names)
    # the same impressions, read or not: a click grade is "dwell grade > 0"
    assert split.y.tolist() == (full.y > 0).astype(int).tolist()
    assert spec.profile["dwell"] is False and spec.profile["source"] == "clicks only"
    assert "user_region" not in spec.categorical


def test_scoring_refuses_a_champion_trained_under_another_profile(world):
    from pipelines.serving.scoring import load_for_scoring

    champion = load_for_scoring()  # trained under the simulator's profile: accepted
    assert champion.spec.profile["source"] == "simulator"
    tags = registry.version_info(champion.version)["tags"]
    assert tags["data_profile"] == "simulator: everything present"
    with stored(DataProfile(source="clicks only", dwell=False)):
        with pytest.raises(NewsrecError, match="signature does not match") as refused:
            load_for_scoring()
    assert "the data profile leaves out: user_dwell_7d_s" in str(refused.value)
    assert "the warehouse's profile is clicks only: no dwell (clicks only)" in str(refused.value)
    assert load_for_scoring().version == champion.version  # the world's profile is back


def test_the_objective_comparison_fits_no_debiased_model_without_positions(world):
    from pipelines.model.objectives import compare_objectives, render_comparison

    with stored(DataProfile(source="no positions", positions_known=False)):
        result = compare_objectives(DAY, train_days=1)
    assert "debiased" not in result["scorers"] and "plain" in result["scorers"]
    assert result["stopped_on"] == "ndcg@10 of the logged labels"  # no positions: no IPS either
    assert "positions are unknown" in result["skipped"]["debiased"]
    assert "debiased: not fitted" in render_comparison(result)
