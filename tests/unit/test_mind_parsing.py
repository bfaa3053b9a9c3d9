"""MIND parsing and table building, no database."""

from pathlib import Path

import pytest

from pipelines.core.errors import DataError
from pipelines.warehouse import mind

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "mind_small"


def test_parse_sample():
    news = mind.parse_news(SAMPLE / "news.tsv")
    assert news["external_id"].tolist()[:2] == ["N1001", "N1002"]
    assert news.loc[news["article_id"] == 1004, "abstract"].item() == ""
    imps, hist, unknown = mind.parse_behaviors(SAMPLE / "behaviors.tsv", set(news["article_id"]))
    # issue 20: references to articles missing from news.tsv are kept (were skipped: 14 and 5)
    assert len(imps) == 15 and imps["clicked"].sum() == 6
    assert unknown == 2


def test_built_events_link_reads_to_impressions():
    news = mind.parse_news(SAMPLE / "news.tsv")
    imps, hist, _ = mind.parse_behaviors(SAMPLE / "behaviors.tsv", set(news["article_id"]))
    articles, users, events = mind.build_tables(news, imps, hist)
    assert events["event_id"].is_unique
    reads = events[(events["event_type"] == "read") & (events["surface"] == "mind")]
    by_id = events.set_index("event_id")
    for _, r in reads.iterrows():
        imp = by_id.loc[int(r["impression_id"])]
        assert (imp["user_id"], imp["article_id"], imp["event_type"]) == (
            r["user_id"],
            r["article_id"],
            "impression",
        )
    assert set(users["region"]) == {"unknown"}  # MIND has no regions: none invented (issue 20)
    assert (
        articles["published_at"]
        <= articles["article_id"].map(events.groupby("article_id")["event_ts"].min()).fillna(articles["published_at"])
    ).all()


def test_duplicate_news_id_is_refused(tmp_path):
    line = (SAMPLE / "news.tsv").read_text().splitlines()[0]
    (tmp_path / "news.tsv").write_text(line + "\n" + line + "\n")
    with pytest.raises(DataError, match="appears twice"):
        mind.parse_news(tmp_path / "news.tsv")
