"""The nightly bench's ranking check: truth grades for the ceiling, the gap share and its bar."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.bench import ranking_quality
from pipelines.core.errors import NewsrecError
from pipelines.model.ranking_metrics import ranking_metrics


def test_grades_order_gains_and_their_label_gain_is_each_grades_mean():
    rng = np.random.default_rng(3)
    gain = np.where(rng.random(5000) < 0.3, 0.0, rng.gamma(2.0, 10.0, 5000))
    grades, edges, label_gain = ranking_quality.truth_grades(gain)
    assert (grades[gain == 0] == 0).all() and (grades[gain > 0] >= 1).all()
    assert grades.max() == len(label_gain) - 1 == ranking_quality.GRADES
    order = np.argsort(gain, kind="stable")
    assert (np.diff(grades[order]) >= 0).all()  # a larger gain never gets a lower grade
    assert label_gain[0] == 0 and (np.diff(label_gain) > 0).all()
    for g in (1, 15, ranking_quality.GRADES):
        assert label_gain[g] == pytest.approx(gain[grades == g].mean())
    # another day's gains are cut at the same edges
    again, same_edges, _ = ranking_quality.truth_grades(gain[:100], edges)
    assert (again == grades[:100]).all() and same_edges is edges


def test_repeated_gains_give_fewer_edges_and_a_monotone_label_gain():
    gain = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 9.0])
    grades, edges, label_gain = ranking_quality.truth_grades(gain)
    assert len(edges) < ranking_quality.GRADES
    assert (np.diff(label_gain) >= 0).all() and not np.isnan(label_gain).any()
    assert grades[0] == 0 and grades[1] == grades[4] < grades[5] == grades[6] < grades[7]


def test_graded_ndcg_ranks_like_the_truth_it_was_cut_from():
    """The ceiling trains on grades whose label_gain is the truth: ranking by the truth scores 1."""
    rng = np.random.default_rng(5)
    gain = rng.gamma(2.0, 10.0, 400)
    groups = np.repeat(np.arange(40), 10)
    grades, _, _ = ranking_quality.truth_grades(gain)
    assert ranking_metrics(groups, grades, gain)["ndcg@10"] == pytest.approx(1.0)
    assert ranking_metrics(groups, grades, -gain)["ndcg@10"] < 0.9


def test_no_positive_gain_is_refused():
    with pytest.raises(NewsrecError, match="no impression a positive gain"):
        ranking_quality.truth_grades(np.zeros(10))


def test_share_and_bar():
    assert ranking_quality.share_of_gap(0.85, 0.5) == pytest.approx(0.7)
    assert np.isnan(ranking_quality.share_of_gap(0.5, 1.0))
    assert ranking_quality.bar(0.95) == 0.70
    assert ranking_quality.bar(0.60) == pytest.approx(0.54)  # 90% of a ceiling below 70%
