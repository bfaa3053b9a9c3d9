"""A simulated world exported in the MIND format, 20% of its articles dropped, imported back."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import NewsrecError
from pipelines.warehouse import mind
from pipelines.warehouse.mind import export
from tests.conftest import SMALL_WORLD
from tests.helpers import clone_database, query, use_database

START = date(2026, 1, 6)  # SMALL_WORLD's second day: the first is history only


def _source_counts() -> dict[str, object]:
    counts = {
        "impressions": query(
            f"SELECT count(*) FROM warehouse.events WHERE event_type = 'impression' AND event_ts >= '{START}'"
        )[0][0],  # fmt: skip
        "clicks": query(
            f"SELECT count(DISTINCT impression_id) FROM warehouse.events WHERE event_type = 'read' "
            f"AND event_ts >= '{START}'"
        )[0][0],  # fmt: skip
        "history": query(
            f"SELECT count(DISTINCT (user_id, article_id)) FROM warehouse.events WHERE event_type = 'read' "
            f"AND event_ts < '{START}' AND user_id IN (SELECT user_id FROM warehouse.events "
            f"WHERE event_type = 'impression' AND event_ts >= '{START}')"
        )[0][0],
        "articles": {a for (a,) in query("SELECT article_id FROM warehouse.articles")},
        "referenced": {
            a
            for (a,) in query(
                f"SELECT DISTINCT article_id FROM warehouse.events WHERE event_ts >= '{START}' OR "
                f"(event_type = 'read' AND user_id IN (SELECT user_id FROM warehouse.events "
                f"WHERE event_type = 'impression' AND event_ts >= '{START}'))"
            )
        },
    }
    return counts


def test_export_with_dropped_articles_round_trips_and_passes_the_feature_gate(
    small_world, pg_server, migrated_template, monkeypatch, tmp_path
):
    out = tmp_path / "mind"
    result = export.export_mind(out, drop_articles=0.2, seed=3)
    src = _source_counts()
    assert result.first_day == START
    news_ids = {int(line.split("\t")[0][1:]) for line in (out / "news.tsv").read_text().splitlines()}
    dropped = src["articles"] - news_ids
    assert len(dropped) == round(0.2 * len(src["articles"])) == result.dropped_articles
    assert (result.impressions, result.clicks) == (src["impressions"], src["clicks"])
    truth = pd.read_csv(out / "truth.tsv", sep="\t")
    assert len(truth) == src["impressions"] and not truth[["impression_id", "position"]].duplicated().any()
    assert truth["relevance"].between(0, 1).all()  # every impression has the simulator's truth

    last = SMALL_WORLD["start"] + timedelta(days=SMALL_WORLD["days"] - 1)
    source_gains = sorted(
        g for (g,) in query("SELECT relevance * expected_dwell FROM sim.impression_truth WHERE day = %s", (last,))
    )

    url = clone_database(pg_server, migrated_template, "mindrt")
    use_database(monkeypatch, url, tmp_path / "home")
    imported = mind.import_mind(out)
    assert (imported.impressions, imported.reads, imported.history_reads) == (
        src["impressions"],
        src["clicks"],
        src["history"],
    )
    unknown = {a for (a,) in query("SELECT article_id FROM warehouse.articles WHERE NOT metadata_known")}
    assert unknown == dropped & src["referenced"] and len(unknown) == imported.unknown_articles > 0
    assert query("SELECT count(*) FROM warehouse.events WHERE dwell_seconds IS NOT NULL") == [(0,)]
    # each behaviors line is one slate: its impressions share the slate id, positions 0..n-1
    assert query(
        "SELECT count(*) FROM (SELECT slate_id FROM warehouse.events WHERE event_type = 'impression' "
        "GROUP BY slate_id HAVING max(position) + 1 <> count(*) OR count(DISTINCT user_id) <> 1) bad"
    ) == [(0,)]
    assert query("SELECT count(DISTINCT slate_id) FROM warehouse.events")[0][0] == result.impression_lines

    # History reads have no impression: they are reads, never CTR numerators; the gate passes.
    # truth.tsv joins back by impression id and position: the imported last day's impressions get
    # the simulator's gains (rounded in the file), every one of them
    from pipelines.core import db
    from pipelines.model import impression_eval

    ids = [
        e
        for (e,) in query(
            f"SELECT event_id FROM warehouse.events WHERE event_type = 'impression' AND event_ts >= '{last}'"
        )
    ]
    conn = db.connect()
    try:
        gains = impression_eval.truth_from_file(conn, last, np.array(ids), out / "truth.tsv")
        with pytest.raises(NewsrecError, match=r"impressions of .* have no line in it"):
            truth[truth["impression_id"] != truth["impression_id"].max()].to_csv(
                tmp_path / "t.tsv", sep="\t", index=False
            )
            impression_eval.truth_from_file(conn, last, np.array(ids), tmp_path / "t.tsv")
        with pytest.raises(NewsrecError, match="not a truth.tsv"):
            impression_eval.truth_from_file(conn, last, np.array(ids), out / "news.tsv")
    finally:
        conn.close()
    np.testing.assert_allclose(np.sort(gains), source_gains, rtol=1e-3, atol=1e-3)

    from pipelines.features import build, partitions
    from pipelines.gates.quality import gate

    build.build(last)
    activity = partitions.read_view("user_activity", last)
    category = partitions.read_view("user_category", last)
    engagement = partitions.read_view("article_engagement", last)
    # history reads (no impression) are reads all the same
    assert (
        activity["user_reads_28d"].sum()
        == query("SELECT count(*) FROM warehouse.events WHERE event_type = 'read'")[0][0]
    )
    assert query("SELECT count(*) FROM warehouse.events WHERE event_type = 'read' AND impression_id IS NULL")[0][0] > 0
    for frame, column in ((activity, "user_ctr_7d"), (category, "user_cat_ctr_28d"), (engagement, "article_ctr_24h")):
        assert frame[column].max() <= 1.0, column
    checked = gate.check_features(last)
    rate_checks = [c for c in checked.outcomes if "_ctr_" in c.name]
    assert len(rate_checks) >= 3 and all(c.success for c in rate_checks), [c for c in rate_checks if not c.success]
    assert checked.passed, [c.name for c in checked.outcomes if not c.success]


def test_export_refuses_an_empty_warehouse(fresh_db, tmp_path):
    with pytest.raises(NewsrecError, match="no events to export"):
        export.export_mind(tmp_path / "mind")
