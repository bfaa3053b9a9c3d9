"""Expectations on what the simulator writes (the shared small world, read only)."""

from datetime import date, timedelta

from tests.conftest import SMALL_WORLD
from tests.helpers import query


def test_row_counts_match_the_configuration(small_world):
    users = SMALL_WORLD["users"]
    per_day = round(users * 0.002)
    assert query("SELECT count(*) FROM warehouse.users") == [(users + per_day * SMALL_WORLD["days"],)]
    days = query(
        "SELECT (published_at AT TIME ZONE 'UTC')::date, count(*) FROM warehouse.articles GROUP BY 1 ORDER BY 1"
    )
    # a lead-in day of articles, then one block per simulated day
    assert len(days) == SMALL_WORLD["days"] + 1
    assert all(n == SMALL_WORLD["articles_per_day"] for _, n in days)
    event_days = query("SELECT DISTINCT (event_ts AT TIME ZONE 'UTC')::date FROM warehouse.events ORDER BY 1")
    start = SMALL_WORLD["start"]
    assert [d for (d,) in event_days] == [start + timedelta(days=i) for i in range(SMALL_WORLD["days"])]


def test_all_regions_present_with_plausible_shares(small_world):
    shares = dict(
        query("SELECT region, avg(1.0) * count(*) / sum(count(*)) OVER () FROM warehouse.users GROUP BY region")
    )
    assert set(shares) == {"LATAM", "AFRICA", "NA"}
    assert 0.30 < float(shares["LATAM"]) < 0.50
    assert 0.15 < float(shares["AFRICA"]) < 0.35


def test_no_event_before_its_article_is_published(small_world):
    early = query(
        "SELECT count(*) FROM warehouse.events e JOIN warehouse.articles a USING (article_id) "
        "WHERE e.event_ts < a.published_at"
    )
    assert early == [(0,)]
    unknown = query(
        "SELECT count(*) FROM warehouse.events e LEFT JOIN warehouse.articles a USING (article_id) "
        "WHERE a.article_id IS NULL"
    )
    assert unknown == [(0,)]


def test_reads_follow_impressions_with_valid_dwell(small_world):
    bad = query(
        "SELECT count(*) FROM warehouse.events r LEFT JOIN warehouse.events i "
        "  ON i.event_id = r.impression_id AND i.event_type = 'impression' "
        "WHERE r.event_type = 'read' AND (i.event_id IS NULL OR i.user_id <> r.user_id "
        "  OR i.article_id <> r.article_id OR r.event_ts < i.event_ts "
        "  OR r.dwell_seconds IS NULL OR r.dwell_seconds <= 0 OR r.dwell_seconds > 1800)"
    )
    assert bad == [(0,)]
    assert query("SELECT count(*) - count(DISTINCT event_id) FROM warehouse.events") == [(0,)]
    # impressions carry no dwell, reads do
    assert query(
        "SELECT count(*) FROM warehouse.events WHERE event_type = 'impression' AND dwell_seconds IS NOT NULL"
    ) == [(0,)]


def test_position_bias_lowers_click_through_down_the_slate(small_world):
    rows = query(
        "SELECT i.position, avg((r.event_id IS NOT NULL)::int) FROM warehouse.events i "
        "LEFT JOIN warehouse.events r ON r.impression_id = i.event_id "
        "WHERE i.event_type = 'impression' GROUP BY 1 ORDER BY 1"
    )
    ctr = {pos: float(v) for pos, v in rows}
    assert min(ctr) == 0 and max(ctr) <= 9
    assert ctr[0] > 2 * ctr[5]


def test_truth_is_recorded_for_every_impression(small_world):
    assert query(
        "SELECT count(*) FROM warehouse.events e LEFT JOIN sim.impression_truth t USING (event_id) "
        "WHERE e.event_type = 'impression' AND t.event_id IS NULL"
    ) == [(0,)]
    assert query("SELECT count(*) FROM sim.user_taste") != [(0,)]


def test_tastes_drive_reading(small_world):
    """Users read more in the categories their latent taste favours."""
    rows = query(
        "SELECT avg(COALESCE(t.weight, 0)) FILTER (WHERE e.event_type = 'read'), "
        "       avg(COALESCE(t.weight, 0)) FILTER (WHERE e.event_type = 'impression') "
        "FROM warehouse.events e JOIN warehouse.articles a USING (article_id) "
        "LEFT JOIN sim.user_taste t ON t.user_id = e.user_id AND t.category = a.category"
    )
    read_taste, shown_taste = (float(v) for v in rows[0])
    assert read_taste > 1.3 * shown_taste


def test_regions_differ(small_world):
    rows = query(
        "SELECT u.region, a.category, count(*) FROM warehouse.events e "
        "JOIN warehouse.users u USING (user_id) JOIN warehouse.articles a USING (article_id) "
        "WHERE e.event_type = 'read' GROUP BY 1, 2"
    )
    by_region: dict[str, dict[str, int]] = {}
    for region, cat, n in rows:
        by_region.setdefault(region, {})[cat] = n
    shares = {r: {c: n / sum(cats.values()) for c, n in cats.items()} for r, cats in by_region.items()}
    cats = set().union(*shares.values())
    spread = max(max(shares[r].get(c, 0) for r in shares) - min(shares[r].get(c, 0) for r in shares) for c in cats)
    assert spread > 0.02


def test_start_date_is_the_first_event_day(small_world):
    assert query("SELECT min(event_ts AT TIME ZONE 'UTC')::date FROM warehouse.events") == [(SMALL_WORLD["start"],)]
    assert isinstance(SMALL_WORLD["start"], date)
