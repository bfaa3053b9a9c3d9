"""The simulator against a real PostgreSQL: re-runs, drift, faults and failure handling."""

from datetime import date, timedelta

import pytest

from pipelines.core.errors import NewsrecError
from pipelines.warehouse import simulator
from tests.helpers import query

START = date(2026, 3, 2)


def _seed(days=2, **kw):
    cfg = simulator.SimConfig.from_params(
        users=kw.pop("users", 300),
        articles_per_day=kw.pop("articles_per_day", 150),
        start=START,
        seed=3,
        **kw,
    )
    return cfg, simulator.seed(cfg, days)


def _fingerprint(day: date) -> list[tuple]:
    return query(
        "SELECT count(*), sum(event_id), sum(user_id), sum(article_id), "
        "sum(coalesce(dwell_seconds, 0))::numeric(14,1), sum(position) "
        "FROM warehouse.events WHERE event_ts >= %s AND event_ts < %s",
        (day, day + timedelta(days=1)),
    )


def test_simulate_day_appends_and_rerun_replaces(fresh_db):
    _seed(days=2)
    day3 = START + timedelta(days=2)
    first = simulator.simulate_day(day3)
    assert first.impressions > 0 and first.reads > 0
    before = _fingerprint(day3)
    users_before = query("SELECT count(*) FROM warehouse.users")
    again = simulator.simulate_day(day3)
    assert (again.impressions, again.reads) == (first.impressions, first.reads)
    assert _fingerprint(day3) == before
    assert query("SELECT count(*) FROM warehouse.users") == users_before
    assert query("SELECT count(*) - count(DISTINCT event_id) FROM warehouse.events") == [(0,)]
    assert query("SELECT count(*) FROM sim.days") == [(4,)]  # lead-in day + 3


def test_seeding_is_reproducible(fresh_db):
    _seed(days=1)
    one = _fingerprint(START)
    _seed(days=1)
    assert _fingerprint(START) == one


def test_drift_moves_reading_towards_drift_categories(fresh_db):
    cfg, _ = _seed(days=4, users=800, drift_from=START + timedelta(days=2), drift_strength=0.7)
    rows = query(
        "SELECT (e.event_ts AT TIME ZONE 'UTC')::date >= %s AS after, "
        "       avg((a.category = ANY(%s))::int) "
        "FROM warehouse.events e JOIN warehouse.articles a USING (article_id) "
        "WHERE e.event_type = 'read' GROUP BY 1",
        (cfg.drift_from, list(cfg.drift_categories)),
    )
    share = {after: float(v) for after, v in rows}
    assert share[True] > share[False] + 0.10
    assert query("SELECT day, drifted FROM sim.days ORDER BY day")[-1][1] is True


@pytest.mark.parametrize(
    "fault, check",
    [
        (
            "null-dwell",
            "SELECT count(*) FROM warehouse.events WHERE event_type = 'read' AND dwell_seconds IS NULL",
        ),
        ("negative-dwell", "SELECT count(*) FROM warehouse.events WHERE dwell_seconds < 0"),
        ("duplicates", "SELECT count(*) - count(DISTINCT event_id) FROM warehouse.events"),
        (
            "unknown-articles",
            "SELECT count(*) FROM warehouse.events e LEFT JOIN warehouse.articles a USING (article_id) "
            "WHERE a.article_id IS NULL",
        ),
    ],
)
def test_event_faults_land_on_the_chosen_day_only(fresh_db, fault, check):
    _seed(days=1)
    assert query(check) == [(0,)]
    day = START + timedelta(days=1)
    result = simulator.simulate_day(day, [fault])
    assert result.faults == (fault,)
    assert query(check)[0][0] > 0
    simulator.simulate_day(day)  # a clean re-run repairs the day
    assert query(check) == [(0,)]


def test_thin_day_has_far_fewer_articles(fresh_db):
    cfg, _ = _seed(days=1)
    thin = simulator.simulate_day(START + timedelta(days=1), ["thin-day"])
    assert thin.articles < cfg.articles_per_day / 5


def test_unknown_fault_and_early_date_are_refused(fresh_db):
    _seed(days=1)
    with pytest.raises(NewsrecError, match="unknown fault"):
        simulator.simulate_day(START + timedelta(days=1), ["gremlins"])
    with pytest.raises(NewsrecError, match="before the simulation start"):
        simulator.simulate_day(START - timedelta(days=5))


def test_simulate_day_needs_a_seeded_world(fresh_db):
    with pytest.raises(NewsrecError, match="warehouse seed"):
        simulator.simulate_day(START)


def test_failure_midway_leaves_the_day_as_it_was(fresh_db):
    _seed(days=2)
    day = START + timedelta(days=1)
    before = _fingerprint(day)
    articles_before = query("SELECT count(*) FROM warehouse.articles")
    # A real database error after the events were written: the truth table rejects rows.
    query(
        "CREATE FUNCTION sim.reject() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
    )
    query("CREATE TRIGGER reject BEFORE INSERT ON sim.impression_truth FOR EACH ROW EXECUTE FUNCTION sim.reject()")
    with pytest.raises(Exception, match="injected failure"):
        simulator.simulate_day(day, ["duplicates"])
    assert _fingerprint(day) == before
    assert query("SELECT count(*) FROM warehouse.articles") == articles_before
