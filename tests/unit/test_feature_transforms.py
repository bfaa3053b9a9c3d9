"""Feature transforms on a few hand-made rows whose expected values can be checked by eye."""

from datetime import UTC, date, datetime

import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.core.errors import NewsrecError
from pipelines.features import matrix, transforms

D = date(2026, 1, 10)


def _ts(day: int, hour: int) -> float:
    return datetime(2026, 1, day, hour, tzinfo=UTC).timestamp()


EVENTS = pd.DataFrame(
    [
        # event_id, user, article, category, type, ts, dwell
        (1, 7, 100, "sports", "impression", _ts(10, 8), None),
        (2, 7, 100, "sports", "read", _ts(10, 9), 60.0),
        (3, 7, 101, "news", "impression", _ts(10, 8), None),
        (4, 7, 101, "news", "read", _ts(10, 10), -5.0),  # bad dwell counts as a read, adds no time
        (4, 7, 101, "news", "read", _ts(10, 10), -5.0),  # duplicate event id counts once
        (5, 8, 100, "sports", "impression", _ts(10, 12), None),
        (6, 8, 100, "sports", "read", _ts(10, 13), None),  # missing dwell
    ],
    columns=transforms.EVENT_COLUMNS,
)


def test_event_partials_by_hand():
    uc, art = transforms.event_partials(EVENTS)
    assert uc.to_dict("records") == [
        {
            "user_id": 7,
            "category": "news",
            "impressions": 1,
            "reads": 1,
            "dwell_s": 0.0,
            "last_read_ts": _ts(10, 10),
            "organic_reads": 0,
        },
        {
            "user_id": 7,
            "category": "sports",
            "impressions": 1,
            "reads": 1,
            "dwell_s": 60.0,
            "last_read_ts": _ts(10, 9),
            "organic_reads": 0,
        },
        {
            "user_id": 8,
            "category": "sports",
            "impressions": 1,
            "reads": 1,
            "dwell_s": 0.0,
            "last_read_ts": _ts(10, 13),
            "organic_reads": 0,
        },
    ]
    assert art.to_dict("records") == [
        {"article_id": 100, "impressions": 2, "reads": 2, "dwell_s": 60.0, "organic_reads": 0},
        {"article_id": 101, "impressions": 1, "reads": 1, "dwell_s": 0.0, "organic_reads": 0},
    ]


def test_user_features_windows_by_hand():
    today, _ = transforms.event_partials(EVENTS)
    old = pd.DataFrame(
        [(7, "sports", 4, 2, 100.0, _ts(1, 9), 0)], columns=list(transforms.UC_PARTIAL_COLUMNS)
    )  # 9 days before D: in the 28-day window, not in the 7-day one
    users = pd.DataFrame(
        {
            "user_id": [7, 8, 9],
            "region": ["NA", "LATAM", "AFRICA"],
            "signup_date": [date(2025, 12, 31), date(2026, 1, 5), date(2026, 1, 11)],
            "plan": ["paid", "trial", "paid"],
            "declared_interests": ["{sports,news}", "{}", "{}"],
        }
    )
    activity, category = transforms.user_features(D, {D: today, date(2026, 1, 1): old}, users)
    assert activity["user_id"].tolist() == [7, 8]  # user 9 signs up after D
    u7 = activity.iloc[0]
    assert (u7["user_impressions_7d"], u7["user_reads_7d"], u7["user_dwell_7d_s"]) == (2, 2, 60.0)
    assert (u7["user_reads_28d"], u7["user_dwell_28d_s"]) == (4, 160.0)
    assert u7["user_mean_dwell_28d_s"] == pytest.approx(40.0)
    assert u7["user_days_since_last_read"] == pytest.approx(14 / 24)  # last read 10:00, end of day 24:00
    assert (u7["user_active_days_28d"], u7["user_tenure_days"], u7["user_is_trial"]) == (2, 11, 0)
    assert u7["user_declared_interests"] == "sports,news"
    u8 = activity.iloc[1]
    assert u8["user_is_trial"] == 1 and u8["user_mean_dwell_28d_s"] == 0.0  # one read, no valid dwell
    sports = category[(category["user_id"] == 7) & (category["category"] == "sports")].iloc[0]
    assert sports["user_cat_impressions_28d"] == 5 and sports["user_cat_reads_28d"] == 3
    assert sports["user_cat_dwell_share_28d"] == pytest.approx(1.0)  # the news read had no valid dwell
    assert sports["user_cat_ctr_28d"] == pytest.approx(3 / 5)
    assert (activity["event_timestamp"] == pd.Timestamp("2026-01-11", tz="UTC")).all()


def test_article_partials_merge_across_user_ranges_in_beam():
    """Article partials of different user ranges add up after a GroupByKey."""
    a = pd.DataFrame({"article_id": [100, 101], "impressions": [2, 1], "reads": [1, 0], "dwell_s": [30.0, 0.0]})
    b = pd.DataFrame({"article_id": [100], "impressions": [3], "reads": [2], "dwell_s": [15.0]})
    with BeamTestPipeline(runner="FnApiRunner") as p:
        merged = (
            p
            | beam.Create([(("article", "2026-01-10"), a), (("article", "2026-01-10"), b)])
            | beam.GroupByKey()
            | beam.MapTuple(lambda key, parts: transforms.merge_article_partials(list(parts)))
            | beam.FlatMap(lambda frame: [tuple(r) for r in frame.itertuples(index=False)])
        )
        # the last field: organic reads, 0 for partials written without the column
        assert_that(merged, equal_to([(100, 5, 3, 45.0, 0), (101, 1, 0, 0.0, 0)]))


def test_reads_without_an_impression_are_no_ctr_numerator():
    """MIND's history (reads with no logged impression) would push every CTR above 1."""
    events = pd.DataFrame(
        [
            # event_id, user, article, category, type, ts, dwell, impression_id
            (1, 7, 100, "sports", "impression", _ts(10, 8), None, None),
            (2, 7, 100, "sports", "read", _ts(10, 9), None, 1),
            (3, 7, 101, "sports", "read", _ts(10, 9), None, None),  # organic
            (4, 7, 100, "sports", "read", _ts(10, 10), None, None),  # organic re-read of 100
            (5, 8, 102, "news", "read", _ts(10, 11), None, None),  # organic, never shown
        ],
        columns=[*transforms.EVENT_COLUMNS, "impression_id"],
    )
    uc, art = transforms.event_partials(events)
    assert uc[["user_id", "impressions", "reads", "organic_reads"]].values.tolist() == [[7, 1, 3, 2], [8, 0, 1, 1]]
    users = pd.DataFrame(
        {
            "user_id": [7, 8],
            "region": ["NA", "NA"],
            "signup_date": [date(2026, 1, 1)] * 2,
            "plan": ["paid"] * 2,
            "declared_interests": ["{}"] * 2,
        }
    )
    activity, category = transforms.user_features(D, {D: uc}, users)
    assert activity["user_reads_7d"].tolist() == [3, 1]  # organic reads are still reads
    assert activity["user_ctr_7d"].iloc[0] == 1.0 and np.isnan(activity["user_ctr_7d"].iloc[1])
    assert category["user_cat_ctr_28d"].tolist()[0] == 1.0
    eng = transforms.article_engagement(D, art).set_index("article_id")
    assert eng.loc[100, "article_reads_24h"] == 2 and eng.loc[100, "article_ctr_24h"] == 1.0
    assert np.isnan(eng.loc[102, "article_ctr_24h"]) and eng.loc[102, "article_reads_24h"] == 1


def test_engagement_ratios_handle_zero_reads():
    partial = pd.DataFrame({"article_id": [1, 2], "impressions": [4, 0], "reads": [0, 0], "dwell_s": [0.0, 0.0]})
    eng = transforms.article_engagement(D, partial)
    assert eng["article_ctr_24h"].iloc[0] == 0.0 and np.isnan(eng["article_ctr_24h"].iloc[1])
    assert np.isnan(eng["article_mean_dwell_24h_s"]).all()


def _rows():
    return pd.DataFrame(
        {
            **{name: [1.0, np.nan] for name in matrix.PASSTHROUGH},
            **{name: [2.0, np.nan] for name in matrix.ZERO_IF_MISSING},
            "article_published_ts": [_ts(10, 0), _ts(10, 6)],
            "event_timestamp": pd.to_datetime([_ts(10, 12), _ts(10, 12)], unit="s", utc=True),
            "user_region": ["NA", "MARS"],
            "article_category": ["sports", "news"],
            "user_declared_interests": ["sports,news", ""],
        }
    )


def test_to_matrix_derives_and_encodes():
    spec = matrix.MatrixSpec(
        matrix.current_feature_names(),
        {"user_region": ("AFRICA", "NA"), "article_category": ("news", "sports")},
    )
    m = matrix.to_matrix(_rows(), spec)
    assert list(m.columns) == list(spec.feature_names) and (m.dtypes == np.float32).all()
    assert m["article_age_h"].tolist() == [12.0, 6.0]
    assert m["declared_interest_match"].tolist() == [1.0, 0.0]
    assert m["user_region"].iloc[0] == 1.0 and np.isnan(m["user_region"].iloc[1])  # unknown region
    assert m["user_cat_reads_28d"].tolist() == [2.0, 0.0]  # missing pair = zero
    assert np.isnan(m["user_ctr_7d"].iloc[1])  # missing stays missing


def test_declared_match_edge_cases():
    rows = pd.DataFrame(
        {
            "article_category": ["news", "", None, "news", "sports", "tv"],
            "user_declared_interests": ["news,news", ",news", "news", None, "sportsx,sport", "news,,tv"],
        }
    )
    # duplicated names, an empty category (never a match), a missing category or list, near names
    assert matrix._declared_match(rows).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def test_request_time_as_naive_aware_or_text_gives_the_same_age():
    spec = matrix.MatrixSpec(matrix.current_feature_names(), {})
    rows = _rows()
    aware = matrix.to_matrix(rows, spec)["article_age_h"]
    naive = matrix.to_matrix(rows.assign(event_timestamp=rows["event_timestamp"].dt.tz_localize(None)), spec)
    text = matrix.to_matrix(rows.assign(event_timestamp=rows["event_timestamp"].astype(str)), spec)
    other_unit = matrix.to_matrix(
        rows.assign(event_timestamp=rows["event_timestamp"].astype("datetime64[s, UTC]")), spec
    )
    for m in (naive, text, other_unit):
        assert m["article_age_h"].tolist() == aware.tolist() == [12.0, 6.0]


def test_signature_check_refuses_mismatches():
    spec = matrix.fit_spec(_rows())
    matrix.check_signature(matrix.MatrixSpec.from_dict(spec.to_dict()))
    reordered = matrix.MatrixSpec(tuple(reversed(spec.feature_names)), spec.categorical)
    with pytest.raises(NewsrecError, match="different order"):
        matrix.check_signature(reordered)
    older = matrix.MatrixSpec(spec.feature_names[:-1] + ("user_favourite_colour",), spec.categorical)
    with pytest.raises(NewsrecError, match="no longer exist: user_favourite_colour"):
        matrix.check_signature(older)
