"""MIND import into the real warehouse: the shipped sample, and malformed files."""

import shutil
from datetime import date
from pathlib import Path

import psycopg2
import pytest

from pipelines.core.errors import DataError
from pipelines.warehouse import mind
from tests.helpers import query

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "mind_small"


def test_sample_loads_with_expected_counts(fresh_db):
    result = mind.import_mind(SAMPLE)
    assert (result.articles, result.users) == (8, 4)
    assert (result.impressions, result.reads, result.history_reads) == (14, 5, 3)
    assert result.skipped_unknown_articles == 2
    assert result.days == [date(2019, 11, 10), date(2019, 11, 11), date(2019, 11, 12), date(2019, 11, 13)]
    assert query("SELECT count(*) FROM warehouse.events WHERE event_type = 'impression'") == [(14,)]
    # clicks point at their impression, same user and article
    assert query(
        "SELECT count(*) FROM warehouse.events r JOIN warehouse.events i ON i.event_id = r.impression_id "
        "WHERE r.event_type = 'read' AND i.user_id = r.user_id AND i.article_id = r.article_id"
    ) == [(5,)]
    assert query("SELECT external_id, region FROM warehouse.users WHERE user_id = 501")[0][0] == "U501"
    assert query(
        "SELECT count(*) FROM warehouse.events e JOIN warehouse.articles a USING (article_id) "
        "WHERE e.event_ts < a.published_at"
    ) == [(0,)]
    positions = query(
        "SELECT position FROM warehouse.events WHERE event_type = 'impression' AND user_id = 502 ORDER BY position"
    )
    assert [p for (p,) in positions] == [0, 1, 2, 3]


def test_reimport_replaces_instead_of_duplicating(fresh_db):
    mind.import_mind(SAMPLE)
    mind.import_mind(SAMPLE)
    assert query("SELECT count(*) FROM warehouse.events") == [(22,)]
    assert query("SELECT count(*) FROM warehouse.articles") == [(8,)]


@pytest.mark.parametrize(
    "file, line, bad, message",
    [
        ("behaviors.tsv", 3, "3\tU501\t11/12/2019 7:45:10 PM\tN1001", "behaviors.tsv:3: expected 5"),
        ("behaviors.tsv", 2, "2\tU502\t2019-11-11 10:20\t\tN1002-1", "behaviors.tsv:2: bad time"),
        (
            "behaviors.tsv",
            4,
            "4\tU503\t11/12/2019 11:59:59 PM\tN1008\tN1001-7",
            "behaviors.tsv:4: bad impression",
        ),
        ("behaviors.tsv", 1, "1\tX501\t11/11/2019 9:05:58 AM\t\tN1003-0", "behaviors.tsv:1: bad user id"),
        ("news.tsv", 5, "N1005\thealth", "news.tsv:5: expected at least 6"),
        ("news.tsv", 2, "1002\tnews\tnewsus\tt\ta\tu\t[]\t[]", "news.tsv:2: bad news id"),
    ],
)
def test_malformed_line_names_file_and_line_and_loads_nothing(fresh_db, tmp_path, file, line, bad, message):
    folder = tmp_path / "mind"
    shutil.copytree(SAMPLE, folder)
    lines = (folder / file).read_text().splitlines()
    lines[line - 1] = bad
    (folder / file).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message):
        mind.import_mind(folder)
    assert query("SELECT count(*) FROM warehouse.events") == [(0,)]
    assert query("SELECT count(*) FROM warehouse.articles") == [(0,)]


def test_error_during_load_rolls_everything_back(fresh_db, tmp_path):
    """A failure inside the transaction (here: a clashing partition) loads nothing."""
    query("CREATE TABLE warehouse.events_20191113 (x int)")  # not a partition: ensure/truncate fails later
    with pytest.raises(psycopg2.Error):
        mind.import_mind(SAMPLE)
    assert query("SELECT count(*) FROM warehouse.articles") == [(0,)]
    assert query("SELECT count(*) FROM warehouse.users") == [(0,)]


def test_missing_files_are_reported(fresh_db, tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        mind.import_mind(tmp_path / "nowhere")
    (tmp_path / "news.tsv").write_text((SAMPLE / "news.tsv").read_text())
    with pytest.raises(DataError, match="behaviors.tsv not found"):
        mind.import_mind(tmp_path)
