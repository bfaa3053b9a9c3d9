"""The stages under a data profile, on hand-made rows: labels, the model's features and its
signature, drift columns, the debiased objective and the one-line summaries. The full profile
(the simulator's) must give exactly what the stages did before profiles existed."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import NewsrecError
from pipelines.features import matrix
from pipelines.gates.drift import features as drift_features
from pipelines.gates.drift import target as drift_target
from pipelines.model import dataset, ranker
from pipelines.warehouse.profile import FULL, DataProfile
from pipelines.warehouse.summary import WarehouseSummary

NO_DWELL = FULL.with_parts(source="clicks", dwell=False)
NO_REGIONS = FULL.with_parts(source="global", regions=False)


def _rows() -> pd.DataFrame:
    """Two feature rows with every source column (values do not matter here)."""
    return pd.DataFrame(
        {
            **{name: [1.0, np.nan] for name in matrix.PASSTHROUGH + matrix.ZERO_IF_MISSING},
            "article_published_ts": [1_768_000_000, 1_768_003_600],
            "event_timestamp": pd.to_datetime([1_768_040_000, 1_768_040_000], unit="s", utc=True),
            "user_region": ["NA", "LATAM"],
            "article_category": ["sports", "news"],
            "user_declared_interests": ["sports", ""],
        }
    )


MIND_LIKE = DataProfile(source="mind", dwell=False, regions=False, publications=False, publish_times=False,
                        positions_known=False, surfaces=False)  # fmt: skip


def test_labels_are_dwell_grades_with_dwell_and_click_grades_without():
    frame = pd.DataFrame({"dwell": [0.0, 10.0, 45.0, 300.0, 0.0], "is_read": [0, 1, 1, 1, 1]})
    assert dataset.labels(frame, FULL, [30, 120]).tolist() == [0, 1, 2, 3, 1]
    # the same reads without dwell (even where a dwell value slipped in): read or not
    assert dataset.labels(frame, NO_DWELL, [30, 120]).tolist() == [0, 1, 1, 1, 1]
    assert dataset.labels(frame, NO_DWELL, [30, 120]).dtype == np.int32


def test_the_full_profile_keeps_every_feature_in_todays_order():
    assert matrix.current_feature_names(FULL) == matrix.current_feature_names() == matrix.ALL_FEATURES
    assert matrix.ALL_FEATURES == matrix.PASSTHROUGH + matrix.ZERO_IF_MISSING + matrix.DERIVED + matrix.CATEGORICAL


def test_no_dwell_means_no_dwell_features_and_no_regions_no_region_feature():
    no_dwell = matrix.current_feature_names(NO_DWELL)
    assert not [f for f in no_dwell if "dwell" in f]
    assert {"user_ctr_7d", "user_cat_reads_28d", "user_region", "article_ctr_24h"} <= set(no_dwell)
    no_regions = matrix.current_feature_names(NO_REGIONS)
    assert "user_region" not in no_regions and set(no_regions) == set(matrix.ALL_FEATURES) - {"user_region"}
    # the order is the full list's, less what the profile leaves out
    assert [f for f in matrix.ALL_FEATURES if f in no_dwell] == list(no_dwell)


def test_spec_and_matrix_follow_the_profile_and_record_it():
    rows = _rows()
    spec = matrix.fit_spec(rows, MIND_LIKE)
    assert spec.feature_names == matrix.current_feature_names(MIND_LIKE)
    assert set(spec.categorical) == {"article_category"}  # no region vocabulary
    assert spec.profile == {"source": "mind", "dwell": False, "regions": False, "publications": False,
                            "publish_times": False, "positions_known": False, "surfaces": False}  # fmt: skip
    X = matrix.to_matrix(rows, spec)
    assert list(X.columns) == list(spec.feature_names)
    assert spec.categorical_indices == [list(spec.feature_names).index("article_category")]
    again = matrix.MatrixSpec.from_dict(spec.to_dict())
    assert again == spec and matrix.trained_profile(again) == MIND_LIKE
    # a signature from before profiles reads and writes as it did
    old = matrix.MatrixSpec(matrix.ALL_FEATURES, {"user_region": (), "article_category": ()})
    assert "profile" not in old.to_dict() and matrix.trained_profile(old) == FULL


def test_a_model_of_another_profile_is_refused_with_both_profiles_named():
    full_spec = matrix.fit_spec(_rows(), FULL.with_parts(source="simulator"))
    matrix.check_signature(full_spec, FULL)
    with pytest.raises(NewsrecError, match="signature does not match") as refused:
        matrix.check_signature(full_spec, NO_DWELL)
    message = str(refused.value)
    assert "the data profile leaves out: user_dwell_7d_s" in message
    assert "trained under data profile simulator: everything present" in message
    assert "the warehouse's profile is clicks: no dwell (clicks only)" in message
    clicks_spec = matrix.fit_spec(_rows(), NO_DWELL)
    matrix.check_signature(clicks_spec, NO_DWELL)
    with pytest.raises(NewsrecError, match="features the model was not trained with: user_dwell_7d_s"):
        matrix.check_signature(clicks_spec, FULL)


def test_drift_columns_follow_the_profile():
    numeric, categorical, shares = drift_features.columns(FULL)
    assert (numeric, categorical, shares) == (list(drift_features.USER_NUMERIC), ["user_region"], True)
    numeric, categorical, shares = drift_features.columns(MIND_LIKE)
    assert not [c for c in numeric if "dwell" in c] and "user_ctr_7d" in numeric
    assert categorical == [] and shares is False
    assert drift_target.target_columns(FULL) == ["clicked", "read_dwell_s"]
    assert drift_target.target_columns(NO_DWELL) == ["clicked"]


def test_debiased_is_off_when_positions_are_unknown():
    assert ranker.objective_on("debiased", False) == ("debiased", None)
    assert ranker.objective_on("plain", False, positions_known=False) == ("plain", None)
    objective, why = ranker.objective_on("debiased", False, positions_known=False)
    assert objective == "plain" and "positions are unknown" in why


def test_summaries_of_a_profile():
    assert FULL.with_parts(source="simulator").summary() == "simulator: everything present"
    assert MIND_LIKE.summary() == (
        "mind: no dwell (clicks only), no regions, no publications, no publish times, positions unknown, no surfaces"
    )
    days = [(date(2019, 11, 11), 15, 6, 0.4, None)]
    no_dwell = WarehouseSummary([("users", 4)], days, MIND_LIKE).render()
    assert "n/a" in no_dwell.splitlines()[5] and "0.0" not in no_dwell.splitlines()[5]
    with_dwell = WarehouseSummary([("users", 4)], [(date(2019, 11, 11), 15, 6, 0.4, 42.0)], FULL).render()
    assert with_dwell.splitlines()[5].endswith("42.0")
