"""One day of reading: sessions of the active users, slates from the old logging policy (partly
from the user's tastes, ordered by publication size), examination that falls with position,
clicks and dwell from the latent appeal; with published lists a share of the sessions shows
them instead (the closed loop). Faults damage the day's events the way upstream bugs do."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from pipelines.warehouse.simulator import closed_loop, impressions, world


def _pick_from_window(times: np.ndarray, t: np.ndarray, window_s: float, u: np.ndarray) -> np.ndarray:
    """Index of a uniformly chosen item with time in (t - window, t]; -1 where none."""
    lo = np.searchsorted(times, t - window_s, side="right")
    hi = np.searchsorted(times, t, side="right")
    count = hi - lo
    idx = lo + np.floor(u * np.maximum(count, 1)).astype(np.int64)
    return np.where(count > 0, idx, -1)


def simulate_events(
    cfg: world.SimConfig,
    day: date,
    users: world.Users,
    pool: impressions.ShowableArticles,
    pubs: world.Publications,
    faults: frozenset[str] = frozenset(),
    live: closed_loop.LiveLists | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impressions and reads of ``day`` plus the per-impression truth for the oracle.

    With ``live`` lists, a share of the sessions (``recommended_session_share``) shows the
    user's published list instead of the old policy's slate: the closed loop, in which the
    next day's reading answers the lists published the night before."""
    rng = world.keyed_rng(cfg.seed, 6, world.day_number(day))
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    window_s = cfg.article_window_hours * 3600
    empty = (impressions.empty_events(), pd.DataFrame(columns=["event_id", "day", "relevance", "expected_dwell"]))
    if len(pool.article_id) == 0 or len(users.activity) == 0:
        return empty

    active = np.flatnonzero(rng.random(len(users.activity)) < users.activity)
    sessions = 1 + rng.poisson(max(cfg.sessions_per_active_user - 1, 0), size=len(active))
    sess_user = np.repeat(active, sessions)
    n_sess = len(sess_user)
    sess_t = day_start + rng.uniform(0, 86_399, size=n_sess)
    sess_surface = rng.choice(len(world.SURFACES), size=n_sess, p=[0.55, 0.35, 0.10])

    k = cfg.slate_size
    slot_sess = np.repeat(np.arange(n_sess), k)
    slot_user = sess_user[slot_sess]
    slot_t = sess_t[slot_sess]
    taste = world.drifted_taste(cfg, users.taste, day)
    # The old policy fills some slots from the user's tastes, the rest from everything fresh.
    personal = rng.random(len(slot_sess)) < cfg.personal_share
    u_cat = rng.random(len(slot_sess))
    cdf = np.cumsum(taste[slot_user], axis=1)
    slot_cat = (cdf < u_cat[:, None]).sum(axis=1).clip(0, len(world.CATEGORIES) - 1)
    u_pick = rng.random(len(slot_sess))
    chosen = _pick_from_window(pool.published_s, slot_t, window_s, u_pick)
    for c in range(len(world.CATEGORIES)):
        in_cat = np.flatnonzero(pool.category_idx == c)
        rows = np.flatnonzero(personal & (slot_cat == c))
        if len(rows) == 0 or len(in_cat) == 0:
            continue
        local = _pick_from_window(pool.published_s[in_cat], slot_t[rows], window_s, u_pick[rows])
        chosen[rows] = np.where(local >= 0, in_cat[np.maximum(local, 0)], chosen[rows])
    keep = chosen >= 0
    slot_sess, slot_user, slot_t, chosen = slot_sess[keep], slot_user[keep], slot_t[keep], chosen[keep]
    # One impression per (session, article).
    pairs = pd.DataFrame({"s": slot_sess, "a": chosen})
    first = ~pairs.duplicated().to_numpy()
    slot_sess, slot_user, slot_t, chosen = slot_sess[first], slot_user[first], slot_t[first], chosen[first]

    # Order within a slate by the policy's score: outlet size plus noise, mostly irrelevant.
    pub_idx = pool.publication_id[chosen] - 1
    policy = np.log(pubs.output_weight[pub_idx]) + rng.normal(0, 0.7, size=len(chosen))
    order = np.lexsort((-policy, slot_sess))
    slot_sess, slot_user, slot_t, chosen, pub_idx = (a[order] for a in (slot_sess, slot_user, slot_t, chosen, pub_idx))
    starts = np.r_[0, np.flatnonzero(np.diff(slot_sess)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(slot_sess)]))
    position = np.arange(len(slot_sess)) - group_start

    # Latent appeal: taste x quality x publication affinity x region x freshness.
    relevance, mu, expected_dwell = impressions.appeal(
        cfg, users, pubs, taste, slot_user, pub_idx, pool.category_idx[chosen], pool.quality[chosen],
        slot_t - pool.published_s[chosen],
    )  # fmt: skip
    examine = (1.0 / (position + 1.0)) ** cfg.position_bias
    clicked = rng.random(len(chosen)) < relevance * examine
    dwell = np.clip(rng.lognormal(mu, impressions.DWELL_SIGMA), 1, 1800)
    read_rows = np.flatnonzero(clicked)
    day_end = day_start + 86_399
    read_t = np.minimum(slot_t[read_rows] + rng.uniform(3, 120, size=len(read_rows)), day_end)

    organic = impressions.Shown(
        user=slot_user,
        article_id=pool.article_id[chosen],
        t=slot_t,
        position=position,
        surface=np.array(world.SURFACES)[sess_surface[slot_sess]],
        relevance=relevance,
        expected_dwell=expected_dwell,
        read_rows=read_rows,
        read_t=read_t,
        dwell=dwell,
    )
    recommended = None
    if live is not None:
        # Sessions that show the user's published list instead of the old policy's slate. The
        # organic draws above are made in full either way, so sessions without a list read as
        # they always did; the recommended ones draw from a stream of their own.
        rec_rng = world.keyed_rng(cfg.seed, 8, world.day_number(day))
        rec_session = rec_rng.random(n_sess) < cfg.recommended_session_share
        recommended = closed_loop.recommended_impressions(
            cfg, day, users, pubs, taste, live, sess_user, sess_t, rec_session, rec_rng
        )
        if recommended is not None:
            shown_lists = np.zeros(n_sess, dtype=bool)
            shown_lists[recommended.session] = True
            organic = organic.subset(~shown_lists[slot_sess])
    parts = [organic] if recommended is None else [organic, recommended.shown]
    events, truth = impressions.to_events(day, users, parts)
    events = inject_faults(events, faults, world.keyed_rng(cfg.seed, 7, world.day_number(day)))
    return events, truth


def inject_faults(events: pd.DataFrame, faults: frozenset[str], rng: np.random.Generator) -> pd.DataFrame:
    """Damage a day's events the way real upstream bugs do (for testing the gates)."""
    if not faults or events.empty:
        return events
    events = events.copy()
    reads = np.flatnonzero(events["event_type"].to_numpy() == "read")
    share = 0.05
    if "null-dwell" in faults and len(reads):
        hit = rng.choice(reads, size=max(1, int(len(reads) * share)), replace=False)
        events.loc[events.index[hit], "dwell_seconds"] = np.nan
    if "negative-dwell" in faults and len(reads):
        hit = rng.choice(reads, size=max(1, int(len(reads) * share)), replace=False)
        events.loc[events.index[hit], "dwell_seconds"] = -events["dwell_seconds"].iloc[hit].abs()
    if "unknown-articles" in faults:
        hit = rng.choice(len(events), size=max(1, int(len(events) * 0.02)), replace=False)
        events.loc[events.index[hit], "article_id"] = world.UNKNOWN_ARTICLE_BASE + hit
    if "duplicates" in faults:
        hit = rng.choice(len(events), size=max(1, int(len(events) * 0.02)), replace=False)
        events = pd.concat([events, events.iloc[hit]], ignore_index=True)
    return events
