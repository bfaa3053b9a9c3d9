"""A simulated news service that fills the warehouse with realistic, reproducible data.

Users have latent tastes over categories and favourite publications; articles have a latent
quality and lose appeal with age; an old logging policy fills slates partly from the user's
tastes and orders them by publication size, and readers examine lower positions less often.
Clicks and dwell follow from taste x quality x freshness x examination. Everything is drawn
from ``numpy`` generators keyed by (seed, day), so re-running a day gives the same rows.

The latent truth goes to the ``sim`` schema, which only the simulator and oracle evaluation
read. Options inject drift (tastes move from a date on) and faults (bad dwell, duplicates, a
thin day, unknown article ids) so that the gates downstream can be tested.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core.config import known_fields, params
from pipelines.core.errors import NewsrecError

log = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = (
    "news", "politics", "world", "sports", "finance", "business", "technology", "science",
    "health", "lifestyle", "entertainment", "travel", "foodanddrink", "autos", "weather",
)  # fmt: skip
CATEGORY_POPULARITY = np.array([14, 9, 8, 12, 7, 6, 7, 4, 6, 7, 9, 3, 4, 2, 2], dtype=np.float64)
REGIONS: tuple[str, ...] = ("LATAM", "AFRICA", "NA")
REGION_LANGUAGES = {
    "LATAM": (("es", "pt"), (0.7, 0.3)),
    "AFRICA": (("en", "fr"), (0.6, 0.4)),
    "NA": (("en", "es"), (0.9, 0.1)),
    "GLOBAL": (("en",), (1.0,)),
}
SURFACES = ("home", "app", "email")
FAULTS = ("null-dwell", "negative-dwell", "duplicates", "thin-day", "unknown-articles")

_EPOCH = date(2000, 1, 1)
ARTICLE_ID_STRIDE = 1_000_000  # article ids: day number * stride + i
EVENT_ID_STRIDE = 100_000_000  # event ids: day number * stride + i
UNKNOWN_ARTICLE_BASE = 999_000_000_000_000


def day_number(day: date) -> int:
    return (day - _EPOCH).days


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


@dataclass
class SimConfig:
    """Everything that shapes the simulated world; stored in ``sim.config`` at seed time."""

    users: int
    articles_per_day: int
    start: date
    seed: int = 7
    region_shares: dict[str, float] = field(default_factory=lambda: {"LATAM": 0.40, "AFRICA": 0.25, "NA": 0.35})
    sessions_per_active_user: float = 1.8
    slate_size: int = 10
    personal_share: float = 0.5
    position_bias: float = 1.0
    new_users_per_day: float = 0.002
    article_window_hours: float = 48.0
    recommended_session_share: float = 0.5
    drift_from: date | None = None
    drift_strength: float = 0.6
    drift_categories: list[str] = field(default_factory=lambda: ["politics", "health", "weather"])

    @classmethod
    def from_params(cls, **overrides: Any) -> SimConfig:
        base = known_fields(cls, params("simulator"))
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def validate(self) -> None:
        if self.users < 10:
            raise NewsrecError("--users must be at least 10")
        if self.articles_per_day < 10:
            raise NewsrecError("--articles-per-day must be at least 10")
        if self.articles_per_day >= ARTICLE_ID_STRIDE:
            raise NewsrecError(f"--articles-per-day must be below {ARTICLE_ID_STRIDE}")
        if set(self.region_shares) != set(REGIONS):
            raise NewsrecError(f"region_shares must name exactly {', '.join(REGIONS)}")
        unknown = set(self.drift_categories) - set(CATEGORIES)
        if unknown:
            raise NewsrecError(f"unknown drift categories: {', '.join(sorted(unknown))}")
        if self.position_bias < 0:
            raise NewsrecError("position_bias must be >= 0")
        if not 0 <= self.recommended_session_share <= 1:
            raise NewsrecError("recommended_session_share must be between 0 and 1")

    def to_json(self) -> str:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        data["drift_from"] = self.drift_from.isoformat() if self.drift_from else None
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str | dict) -> SimConfig:
        data = json.loads(raw) if isinstance(raw, str) else dict(raw)
        data["start"] = date.fromisoformat(data["start"])
        if data.get("drift_from"):
            data["drift_from"] = date.fromisoformat(data["drift_from"])
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def new_users_each_day(self) -> int:
        return int(round(self.users * self.new_users_per_day))


# --------------------------------------------------------------------------------------
# The world: publications, users, articles (pure functions of the config)
# --------------------------------------------------------------------------------------


@dataclass
class Publications:
    frame: pd.DataFrame  # warehouse.publications rows
    quality: np.ndarray
    output_weight: np.ndarray
    category_cdf: np.ndarray  # (n_pub, n_cat) cumulative category mix


def make_publications(cfg: SimConfig) -> Publications:
    rng = _rng(cfg.seed, 1)
    n = int(np.clip(cfg.articles_per_day // 70, 30, 3000))
    regions = np.array([*REGIONS, "GLOBAL"])
    home = regions[rng.choice(4, size=n, p=[0.35, 0.22, 0.33, 0.10])]
    language = np.empty(n, dtype=object)
    for region, (langs, probs) in REGION_LANGUAGES.items():
        mask = home == region
        language[mask] = np.array(langs)[rng.choice(len(langs), size=mask.sum(), p=probs)]
    trust = rng.beta(6, 2, size=n)
    misinformation = (trust < 0.45) & (rng.random(n) < 0.5)
    quality = rng.normal(0, 0.4, size=n) + 0.8 * (trust - 0.75)
    output_weight = rng.lognormal(0, 1, size=n)
    cat_mix = rng.dirichlet(0.4 * CATEGORY_POPULARITY / CATEGORY_POPULARITY.mean(), size=n)
    ids = np.arange(1, n + 1)
    frame = pd.DataFrame(
        {
            "publication_id": ids,
            "name": [f"Publication {i:04d}" for i in ids],
            "domain": [f"pub{i:04d}.example" for i in ids],
            "home_region": home,
            "language": language,
            "trust_score": trust.round(4),
            "misinformation_flag": misinformation,
        }
    )
    return Publications(frame, quality, output_weight, np.cumsum(cat_mix, axis=1))


def region_category_bias(cfg: SimConfig) -> np.ndarray:
    """(region, category) shifts of appeal: regions read differently."""
    return _rng(cfg.seed, 2).normal(0, 0.35, size=(len(REGIONS), len(CATEGORIES)))


@dataclass
class Users:
    frame: pd.DataFrame  # warehouse.users rows
    region_idx: np.ndarray
    activity: np.ndarray
    taste: np.ndarray  # (n, n_cat) rows sum to 1
    fav_pub: np.ndarray  # (n, 3) publication ids, 0 = none
    fav_affinity: np.ndarray  # (n, 3)


def _draw_users(
    cfg: SimConfig, rng: np.random.Generator, ids: np.ndarray, signup: np.ndarray, pubs: Publications
) -> Users:
    n = len(ids)
    shares = np.array([cfg.region_shares[r] for r in REGIONS], dtype=np.float64)
    region_idx = rng.choice(len(REGIONS), size=n, p=shares / shares.sum())
    activity = np.clip(rng.beta(2.0, 5.0, size=n), 0.02, 0.95)
    alpha = 1.2 * CATEGORY_POPULARITY / CATEGORY_POPULARITY.sum()
    taste = rng.gamma(np.broadcast_to(alpha, (n, len(CATEGORIES))))
    taste = np.maximum(taste, 1e-9)
    taste /= taste.sum(axis=1, keepdims=True)
    # Favourite publications: up to three, from the user's region or global outlets.
    n_fav = rng.choice(4, size=n, p=[0.3, 0.3, 0.25, 0.15])
    home = pubs.frame["home_region"].to_numpy()
    fav_pub = np.zeros((n, 3), dtype=np.int64)
    for r, region in enumerate(REGIONS):
        candidates = np.flatnonzero((home == region) | (home == "GLOBAL"))
        weights = pubs.output_weight[candidates] / pubs.output_weight[candidates].sum()
        rows = np.flatnonzero(region_idx == r)
        picks = rng.choice(candidates, size=(len(rows), 3), p=weights) + 1
        fav_pub[rows] = picks
    fav_pub[np.arange(3)[None, :] >= n_fav[:, None]] = 0
    fav_affinity = np.where(fav_pub > 0, rng.uniform(0.3, 1.2, size=(n, 3)), 0.0)
    # Declared interests: most users name their top one to three categories, sometimes wrong.
    order = np.argsort(-taste, axis=1)
    n_declared = rng.choice(4, size=n, p=[0.35, 0.3, 0.25, 0.1])
    noisy = rng.random((n, 3)) < 0.2
    declared_idx = np.where(noisy, rng.integers(0, len(CATEGORIES), size=(n, 3)), order[:, :3])
    cats = np.array(CATEGORIES)
    interests = []
    for row, k in zip(declared_idx, n_declared, strict=True):
        picked = list(dict.fromkeys(cats[row[:k]]))
        interests.append("{" + ",".join(picked) + "}")
    plan = np.where(rng.random(n) < 0.8, "paid", "trial")
    frame = pd.DataFrame(
        {
            "user_id": ids,
            "region": np.array(REGIONS)[region_idx],
            "signup_date": signup,
            "plan": plan,
            "declared_interests": interests,
        }
    )
    return Users(frame, region_idx, activity, taste, fav_pub, fav_affinity)


def make_base_users(cfg: SimConfig, pubs: Publications) -> Users:
    rng = _rng(cfg.seed, 3)
    ids = np.arange(1, cfg.users + 1, dtype=np.int64)
    age_days = np.floor(rng.exponential(400, size=cfg.users)).astype(int) + 1
    signup = np.array(cfg.start, dtype="datetime64[D]") - age_days.astype("timedelta64[D]")
    return _draw_users(cfg, rng, ids, signup, pubs)


def make_new_users(cfg: SimConfig, day: date, pubs: Publications) -> Users:
    """Users who sign up on ``day`` (ids follow the base users, a block per day)."""
    per_day = cfg.new_users_each_day
    offset = (day - cfg.start).days
    ids = cfg.users + 1 + offset * per_day + np.arange(per_day, dtype=np.int64)
    signup = np.full(per_day, np.datetime64(day, "D"))
    users = _draw_users(cfg, _rng(cfg.seed, 4, day_number(day)), ids, signup, pubs)
    users.frame["plan"] = "trial"
    return users


def concat_users(parts: list[Users]) -> Users:
    return Users(
        pd.concat([p.frame for p in parts], ignore_index=True),
        np.concatenate([p.region_idx for p in parts]),
        np.concatenate([p.activity for p in parts]),
        np.concatenate([p.taste for p in parts]),
        np.concatenate([p.fav_pub for p in parts]),
        np.concatenate([p.fav_affinity for p in parts]),
    )


def users_on(cfg: SimConfig, day: date, pubs: Publications) -> Users:
    """Everybody signed up before ``day`` (new users of ``day`` start reading the next day)."""
    parts = [make_base_users(cfg, pubs)]
    if cfg.new_users_each_day:
        current = cfg.start
        while current < day:
            parts.append(make_new_users(cfg, current, pubs))
            current += timedelta(days=1)
    return concat_users(parts)


def drifted_taste(cfg: SimConfig, taste: np.ndarray, day: date) -> np.ndarray:
    if cfg.drift_from is None or day < cfg.drift_from:
        return taste
    target = np.zeros(len(CATEGORIES))
    for cat in cfg.drift_categories:
        target[CATEGORIES.index(cat)] = 1.0 / len(cfg.drift_categories)
    return (1 - cfg.drift_strength) * taste + cfg.drift_strength * target


def make_articles(
    cfg: SimConfig, day: date, pubs: Publications, faults: frozenset[str] = frozenset()
) -> tuple[pd.DataFrame, np.ndarray]:
    """The articles published on ``day`` and their latent quality."""
    rng = _rng(cfg.seed, 5, day_number(day))
    n = cfg.articles_per_day
    if "thin-day" in faults:
        n = max(1, n // 12)
    p = pubs.output_weight / pubs.output_weight.sum()
    pub_idx = rng.choice(len(p), size=n, p=p)
    u = rng.random(n)
    cat_idx = (pubs.category_cdf[pub_idx] < u[:, None]).sum(axis=1).clip(0, len(CATEGORIES) - 1)
    sub = rng.integers(0, 4, size=n)
    seconds = np.sort(rng.integers(0, 86_400, size=n))
    ids = day_number(day) * ARTICLE_ID_STRIDE + np.arange(n, dtype=np.int64)
    published = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(seconds, unit="s")
    cats = np.array(CATEGORIES)[cat_idx]
    subcats = np.char.add(np.char.add(cats.astype(str), "-"), sub.astype(str))
    domains = pubs.frame["domain"].to_numpy()[pub_idx]
    names = pubs.frame["name"].to_numpy()[pub_idx]
    stamp = day.strftime("%Y/%m/%d")
    frame = pd.DataFrame(
        {
            "article_id": ids,
            "publication_id": pub_idx + 1,
            "category": cats,
            "subcategory": subcats,
            "title": [f"{nm}: {sc} report {i}" for nm, sc, i in zip(names, subcats, ids, strict=True)],
            "abstract": [f"What happened in {c} today, by {nm}." for c, nm in zip(cats, names, strict=True)],
            "url": [f"https://{d}/{stamp}/{i}" for d, i in zip(domains, ids, strict=True)],
            "language": pubs.frame["language"].to_numpy()[pub_idx],
            "published_at": published.astype("datetime64[us, UTC]"),
        }
    )
    quality = pubs.quality[pub_idx] + rng.normal(0, 0.7, size=n)
    return frame, quality


# --------------------------------------------------------------------------------------
# One day of reading: slates from the logging policy, examination, clicks, dwell
# --------------------------------------------------------------------------------------


@dataclass
class ArticlePool:
    """Articles that can be shown on a day, sorted by publication time."""

    article_id: np.ndarray
    publication_id: np.ndarray
    category_idx: np.ndarray
    published_s: np.ndarray  # seconds since the epoch
    quality: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ArticlePool:
        frame = frame.sort_values(["published_at", "article_id"], kind="stable")
        cat_index = {c: i for i, c in enumerate(CATEGORIES)}
        published = pd.to_datetime(frame["published_at"], utc=True)
        return cls(
            frame["article_id"].to_numpy(np.int64),
            frame["publication_id"].to_numpy(np.int64),
            frame["category"].map(cat_index).fillna(0).to_numpy(np.int64),
            ((published - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(np.float64),
            frame["quality"].to_numpy(np.float64),
        )


def _pick_from_window(times: np.ndarray, t: np.ndarray, window_s: float, u: np.ndarray) -> np.ndarray:
    """Index of a uniformly chosen item with time in (t - window, t]; -1 where none."""
    lo = np.searchsorted(times, t - window_s, side="right")
    hi = np.searchsorted(times, t, side="right")
    count = hi - lo
    idx = lo + np.floor(u * np.maximum(count, 1)).astype(np.int64)
    return np.where(count > 0, idx, -1)


def simulate_events(
    cfg: SimConfig,
    day: date,
    users: Users,
    pool: ArticlePool,
    pubs: Publications,
    faults: frozenset[str] = frozenset(),
    live: LiveLists | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impressions and reads of ``day`` plus the per-impression truth for the oracle.

    With ``live`` lists, a share of the sessions (``recommended_session_share``) shows the
    user's published list instead of the old policy's slate: the closed loop, in which the
    next day's reading answers the lists published the night before."""
    rng = _rng(cfg.seed, 6, day_number(day))
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    window_s = cfg.article_window_hours * 3600
    empty = (_empty_events(), pd.DataFrame(columns=["event_id", "day", "relevance", "expected_dwell"]))
    if len(pool.article_id) == 0 or len(users.activity) == 0:
        return empty

    active = np.flatnonzero(rng.random(len(users.activity)) < users.activity)
    sessions = 1 + rng.poisson(max(cfg.sessions_per_active_user - 1, 0), size=len(active))
    sess_user = np.repeat(active, sessions)
    n_sess = len(sess_user)
    sess_t = day_start + rng.uniform(0, 86_399, size=n_sess)
    sess_surface = rng.choice(len(SURFACES), size=n_sess, p=[0.55, 0.35, 0.10])

    k = cfg.slate_size
    slot_sess = np.repeat(np.arange(n_sess), k)
    slot_user = sess_user[slot_sess]
    slot_t = sess_t[slot_sess]
    taste = drifted_taste(cfg, users.taste, day)
    # The old policy fills some slots from the user's tastes, the rest from everything fresh.
    personal = rng.random(len(slot_sess)) < cfg.personal_share
    u_cat = rng.random(len(slot_sess))
    cdf = np.cumsum(taste[slot_user], axis=1)
    slot_cat = (cdf < u_cat[:, None]).sum(axis=1).clip(0, len(CATEGORIES) - 1)
    u_pick = rng.random(len(slot_sess))
    chosen = _pick_from_window(pool.published_s, slot_t, window_s, u_pick)
    for c in range(len(CATEGORIES)):
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
    relevance, mu, expected_dwell = _appeal(
        cfg, users, pubs, taste, slot_user, pub_idx, pool.category_idx[chosen], pool.quality[chosen],
        slot_t - pool.published_s[chosen],
    )  # fmt: skip
    examine = (1.0 / (position + 1.0)) ** cfg.position_bias
    clicked = rng.random(len(chosen)) < relevance * examine
    dwell = np.clip(rng.lognormal(mu, _DWELL_SIGMA), 1, 1800)
    read_rows = np.flatnonzero(clicked)
    day_end = day_start + 86_399
    read_t = np.minimum(slot_t[read_rows] + rng.uniform(3, 120, size=len(read_rows)), day_end)

    organic = _Shown(
        user=slot_user,
        article_id=pool.article_id[chosen],
        t=slot_t,
        position=position,
        surface=np.array(SURFACES)[sess_surface[slot_sess]],
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
        rec_rng = _rng(cfg.seed, 8, day_number(day))
        rec_session = rec_rng.random(n_sess) < cfg.recommended_session_share
        recommended = _recommended(cfg, day, users, pubs, taste, live, sess_user, sess_t, rec_session, rec_rng)
        if recommended is not None:
            shown_lists = np.zeros(n_sess, dtype=bool)
            shown_lists[recommended.session] = True
            organic = organic.subset(~shown_lists[slot_sess])
    parts = [organic] if recommended is None else [organic, recommended.shown]
    events, truth = _to_events(day, users, parts)
    events = inject_faults(events, faults, _rng(cfg.seed, 7, day_number(day)))
    return events, truth


_DWELL_SIGMA = 0.6


def _appeal(
    cfg: SimConfig,
    users: Users,
    pubs: Publications,
    taste: np.ndarray,
    slot_user: np.ndarray,
    pub_idx: np.ndarray,
    cat: np.ndarray,
    quality: np.ndarray,
    age_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The latent truth of showing articles to users: P(worth reading), log-dwell mean, E[dwell]."""
    age_days = np.maximum(age_s, 0) / 86_400
    user_taste = taste[slot_user, cat]
    fav = (users.fav_pub[slot_user] == (pub_idx + 1)[:, None]) * users.fav_affinity[slot_user]
    home = pubs.frame["home_region"].to_numpy()[pub_idx]
    home_match = home == np.array(REGIONS)[users.region_idx[slot_user]]
    bias = region_category_bias(cfg)[users.region_idx[slot_user], cat]
    logit = (
        -2.3
        + 1.3 * np.log(len(CATEGORIES) * user_taste + 0.1)
        + 0.8 * quality
        + fav.sum(axis=1)
        + 0.4 * home_match
        + bias
        - 0.6 * age_days
    )
    relevance = 1 / (1 + np.exp(-logit))
    mu = np.log(25.0) + 1.6 * relevance + 0.15 * quality
    expected_dwell = np.exp(mu + _DWELL_SIGMA**2 / 2)
    return relevance, mu, expected_dwell


@dataclass
class _Shown:
    """Impressions of a day (one row each) and the reads they led to (rows of ``read_rows``)."""

    user: np.ndarray  # index into Users
    article_id: np.ndarray
    t: np.ndarray
    position: np.ndarray
    surface: np.ndarray
    relevance: np.ndarray
    expected_dwell: np.ndarray
    read_rows: np.ndarray
    read_t: np.ndarray
    dwell: np.ndarray  # per impression (used where read)
    batch_id: np.ndarray | None = None  # recommended impressions: the batch, arm and model shown
    arm: np.ndarray | None = None
    model_version: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> _Shown:
        new_index = np.cumsum(keep) - 1
        read_keep = keep[self.read_rows]

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return a[keep] if a is not None else None

        return _Shown(
            pick(self.user), pick(self.article_id), pick(self.t), pick(self.position), pick(self.surface),
            pick(self.relevance), pick(self.expected_dwell), new_index[self.read_rows[read_keep]],
            self.read_t[read_keep], pick(self.dwell), pick(self.batch_id), pick(self.arm), pick(self.model_version),
        )  # fmt: skip


def _to_events(day: date, users: Users, parts: list[_Shown]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Event rows (impressions first, then reads) with ids in that order, and the truth."""
    n_imp = sum(len(p.user) for p in parts)
    n_read = sum(len(p.read_rows) for p in parts)
    if n_imp + n_read >= EVENT_ID_STRIDE:
        raise NewsrecError("too many events for one day; lower --users")
    base_id = day_number(day) * EVENT_ID_STRIDE
    imp_ids = base_id + np.arange(n_imp, dtype=np.int64)
    read_ids = base_id + n_imp + np.arange(n_read, dtype=np.int64)
    offsets = np.cumsum([0] + [len(p.user) for p in parts])
    cat = np.concatenate
    read_rows = cat([p.read_rows + off for p, off in zip(parts, offsets, strict=False)])
    user = cat([p.user for p in parts])
    article = cat([p.article_id for p in parts])
    t = cat([p.t for p in parts])
    position = cat([p.position for p in parts])
    surface = cat([p.surface for p in parts])
    dwell = cat([p.dwell for p in parts])
    user_ids = users.frame["user_id"].to_numpy(np.int64)
    events = pd.DataFrame(
        {
            "event_id": np.r_[imp_ids, read_ids],
            "impression_id": pd.array(np.r_[imp_ids, imp_ids[read_rows]], dtype="Int64"),
            "user_id": np.r_[user_ids[user], user_ids[user[read_rows]]],
            "article_id": np.r_[article, article[read_rows]],
            "event_type": np.r_[np.full(n_imp, "impression"), np.full(n_read, "read")],
            "event_ts": pd.to_datetime(np.r_[t, cat([p.read_t for p in parts])], unit="s", utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "position": np.r_[position, position[read_rows]].astype(np.int16),
            "surface": np.r_[surface, surface[read_rows]],
            "dwell_seconds": np.r_[np.full(n_imp, np.nan), dwell[read_rows].round(1)],
        }
    )
    if any(p.batch_id is not None for p in parts):
        for column in ("batch_id", "arm", "model_version"):
            values = cat(
                [
                    getattr(p, column) if getattr(p, column) is not None else np.full(len(p.user), None, dtype=object)
                    for p in parts
                ]
            ).astype(object)
            events[column] = np.r_[values, values[read_rows]]
        events["batch_id"] = pd.array(events["batch_id"], dtype="Int64")
    events["impression_id"] = events["impression_id"].where(events["event_type"] == "read")
    truth = pd.DataFrame(
        {
            "event_id": imp_ids,
            "day": day.isoformat(),
            "relevance": cat([p.relevance for p in parts]).astype(np.float32),
            "expected_dwell": cat([p.expected_dwell for p in parts]).astype(np.float32),
        }
    )
    return events, truth


# --------------------------------------------------------------------------------------
# The closed loop: sessions that show the published lists
# --------------------------------------------------------------------------------------

REC_SURFACE = "recs"  # surface of impressions (and their reads) that showed a published list


@dataclass
class LiveLists:
    """A published batch as the simulated readers see it (personal lists, regional fallbacks)."""

    batch_id: int
    lists: pd.DataFrame  # user_id, rank, article_id, arm, model_version
    fallback: pd.DataFrame  # region, rank, article_id
    articles: pd.DataFrame  # article_id, publication_id, category, published_at, quality


@dataclass
class _Recommended:
    session: np.ndarray  # sessions that showed a list
    shown: _Shown


def _recommended(
    cfg: SimConfig,
    day: date,
    users: Users,
    pubs: Publications,
    taste: np.ndarray,
    live: LiveLists,
    sess_user: np.ndarray,
    sess_t: np.ndarray,
    rec_session: np.ndarray,
    rng: np.random.Generator,
) -> _Recommended | None:
    """Impressions of the sessions that show the user's list (or the region's fallback list),
    at their ranks, examined with the same position bias, read as the latent truth says."""
    user_ids = users.frame["user_id"].to_numpy(np.int64)
    pos_of = pd.Series(np.arange(len(user_ids)), index=user_ids)
    lists = live.lists[live.lists["user_id"].isin(pos_of.index)]
    lists = lists.assign(user=pos_of.loc[lists["user_id"]].to_numpy())
    has_list = np.zeros(len(user_ids), dtype=bool)
    has_list[lists["user"].to_numpy()] = True
    sessions = np.flatnonzero(rec_session)
    if not len(sessions):
        return None
    frame = pd.DataFrame({"session": sessions, "user": sess_user[sessions]})
    personal = frame[has_list[frame["user"].to_numpy()]].merge(lists.drop(columns="user_id"), on="user")
    others = frame[~has_list[frame["user"].to_numpy()]]
    others = others.assign(region=np.array(REGIONS)[users.region_idx[others["user"].to_numpy()]])
    regional = others.merge(live.fallback, on="region")
    missing = others[~others["session"].isin(regional["session"])]
    global_list = live.fallback[live.fallback["region"] == "GLOBAL"].drop(columns="region")
    global_ = missing.drop(columns="region").merge(global_list, how="cross")
    fallback = pd.concat([regional.drop(columns="region"), global_], ignore_index=True)
    fallback = fallback.assign(arm=None, model_version=None)
    shown = pd.concat([personal, fallback], ignore_index=True)
    shown = shown.merge(live.articles, on="article_id")  # unknown articles cannot be shown
    shown["t"] = sess_t[shown["session"].to_numpy()]
    shown = shown[shown["published_s"] <= shown["t"]]
    if shown.empty:
        return None
    shown = shown.sort_values(["session", "rank"], kind="stable").reset_index(drop=True)
    user = shown["user"].to_numpy(np.int64)
    pub_idx = shown["publication_id"].to_numpy(np.int64) - 1
    quality = shown["quality"].to_numpy(np.float64)
    relevance, mu, expected_dwell = _appeal(
        cfg, users, pubs, taste, user, pub_idx, shown["category_idx"].to_numpy(np.int64), quality,
        shown["t"].to_numpy() - shown["published_s"].to_numpy(),
    )  # fmt: skip
    position = shown["rank"].to_numpy(np.int64) - 1
    examine = (1.0 / (position + 1.0)) ** cfg.position_bias
    clicked = rng.random(len(shown)) < relevance * examine
    dwell = np.clip(rng.lognormal(mu, _DWELL_SIGMA), 1, 1800)
    read_rows = np.flatnonzero(clicked)
    day_end = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + 86_399
    t = shown["t"].to_numpy(np.float64)
    read_t = np.minimum(t[read_rows] + rng.uniform(3, 120, size=len(read_rows)), day_end)
    n = len(shown)
    return _Recommended(
        shown["session"].unique(),
        _Shown(
            user=user,
            article_id=shown["article_id"].to_numpy(np.int64),
            t=t,
            position=position,
            surface=np.full(n, REC_SURFACE, dtype=object),
            relevance=relevance,
            expected_dwell=expected_dwell,
            read_rows=read_rows,
            read_t=read_t,
            dwell=dwell,
            batch_id=np.full(n, live.batch_id, dtype=object),
            arm=shown["arm"].to_numpy(object),
            model_version=shown["model_version"].to_numpy(object),
        ),
    )


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["event_id", "impression_id", "user_id", "article_id", "event_type", "event_ts",
                 "position", "surface", "dwell_seconds"]
    )  # fmt: skip


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
        events.loc[events.index[hit], "article_id"] = UNKNOWN_ARTICLE_BASE + hit
    if "duplicates" in faults:
        hit = rng.choice(len(events), size=max(1, int(len(events) * 0.02)), replace=False)
        events = pd.concat([events, events.iloc[hit]], ignore_index=True)
    return events


# --------------------------------------------------------------------------------------
# Writing to the warehouse
# --------------------------------------------------------------------------------------


def _users_sim_frames(users: Users) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ids = users.frame["user_id"].to_numpy(np.int64)
    sim_users = pd.DataFrame({"user_id": ids, "activity": users.activity.round(4)})
    rows, cols = np.nonzero(users.taste >= 0.01)
    taste = pd.DataFrame(
        {
            "user_id": ids[rows],
            "category": np.array(CATEGORIES)[cols],
            "weight": users.taste[rows, cols].round(4),
        }
    )
    rows, cols = np.nonzero(users.fav_pub > 0)
    aff = pd.DataFrame(
        {
            "user_id": ids[rows],
            "publication_id": users.fav_pub[rows, cols],
            "affinity": users.fav_affinity[rows, cols].round(4),
        }
    ).drop_duplicates(["user_id", "publication_id"])
    return sim_users, taste, aff


def _write_users(cur: Any, users: Users) -> None:
    db.copy_frame(cur, "warehouse.users", users.frame)
    sim_users, taste, aff = _users_sim_frames(users)
    db.copy_frame(cur, "sim.users", sim_users)
    db.copy_frame(cur, "sim.user_taste", taste)
    db.copy_frame(cur, "sim.user_publication_affinity", aff)


def _write_articles(cur: Any, articles: pd.DataFrame, quality: np.ndarray) -> None:
    db.copy_frame(cur, "warehouse.articles", articles)
    db.copy_frame(
        cur,
        "sim.articles",
        pd.DataFrame({"article_id": articles["article_id"], "quality": quality.round(4)}),
    )


def _load_pool(cur: Any, conn: Any, day: date, window_hours: float) -> pd.DataFrame:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=window_hours)
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return db.read_frame(
        conn,
        "SELECT a.article_id, a.publication_id, a.category, a.published_at, s.quality "
        "FROM warehouse.articles a JOIN sim.articles s USING (article_id) "
        "WHERE a.published_at >= %s AND a.published_at < %s",
        (start, end),
    )


def _replace_day(cur: Any, cfg: SimConfig, day: date) -> None:
    """Delete whatever the simulator wrote for ``day`` before writing it again."""
    lo = day_number(day) * ARTICLE_ID_STRIDE
    cur.execute("SELECT warehouse.ensure_events_partition(%s)", (day,))
    part = cur.fetchone()[0]
    cur.execute(f"TRUNCATE warehouse.{part}")
    cur.execute("DELETE FROM sim.impression_truth WHERE day = %s", (day,))
    cur.execute(
        "DELETE FROM warehouse.articles WHERE article_id >= %s AND article_id < %s",
        (lo, lo + ARTICLE_ID_STRIDE),
    )
    cur.execute(
        "DELETE FROM sim.articles WHERE article_id >= %s AND article_id < %s",
        (lo, lo + ARTICLE_ID_STRIDE),
    )
    if cfg.new_users_each_day and day >= cfg.start:
        first = cfg.users + 1 + (day - cfg.start).days * cfg.new_users_each_day
        last = first + cfg.new_users_each_day
        for table in ("warehouse.users", "sim.users", "sim.user_taste", "sim.user_publication_affinity"):
            cur.execute(f"DELETE FROM {table} WHERE user_id >= %s AND user_id < %s", (first, last))
    cur.execute("DELETE FROM sim.days WHERE day = %s", (day,))


@dataclass
class DayResult:
    day: date
    articles: int
    impressions: int
    reads: int
    new_users: int
    faults: tuple[str, ...]
    drifted: bool
    batch_id: int | None = None  # the published batch whose lists the day showed
    recommended: int = 0  # impressions that showed a published list


def _generate_day(
    cur: Any,
    conn: Any,
    cfg: SimConfig,
    day: date,
    pubs: Publications,
    users: Users,
    faults: frozenset[str],
    with_events: bool = True,
    live: LiveLists | None = None,
) -> DayResult:
    _replace_day(cur, cfg, day)
    articles, quality = make_articles(cfg, day, pubs, faults)
    _write_articles(cur, articles, quality)
    new_users = 0
    if cfg.new_users_each_day and day >= cfg.start and with_events:
        fresh = make_new_users(cfg, day, pubs)
        _write_users(cur, fresh)
        new_users = len(fresh.frame)
    impressions = reads = recommended = 0
    if with_events:
        pool = ArticlePool.from_frame(_load_pool(cur, conn, day, cfg.article_window_hours))
        events, truth = simulate_events(cfg, day, users, pool, pubs, faults, live)
        db.copy_frame(cur, "warehouse.events", events)
        db.copy_frame(cur, "sim.impression_truth", truth)
        impressions = int((events["event_type"] == "impression").sum())
        reads = len(events) - impressions
        if "batch_id" in events.columns:
            recommended = int(((events["event_type"] == "impression") & (events["surface"] == REC_SURFACE)).sum())
    drifted = bool(cfg.drift_from and day >= cfg.drift_from)
    cur.execute(
        "INSERT INTO sim.days (day, drifted, faults, n_articles, n_events) VALUES (%s, %s, %s, %s, %s)",
        (day, drifted, sorted(faults), len(articles), impressions + reads),
    )
    return DayResult(
        day, len(articles), impressions, reads, new_users, tuple(sorted(faults)), drifted,
        live.batch_id if live is not None else None, recommended,
    )  # fmt: skip


def _check_faults(faults: list[str] | tuple[str, ...]) -> frozenset[str]:
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise NewsrecError(f"unknown fault {sorted(unknown)[0]!r}; choose from {', '.join(FAULTS)}")
    return frozenset(faults)


def _progress(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="day", disable=None)


def seed(
    cfg: SimConfig,
    days: int,
    faults: list[str] | tuple[str, ...] = (),
    fault_date: date | None = None,
) -> list[DayResult]:
    """Replace the warehouse with a fresh simulated world and ``days`` days of reading.

    Runs as one transaction: on any error the previous warehouse is left as it was.
    """
    cfg.validate()
    if days < 1:
        raise NewsrecError("--days must be at least 1")
    fault_set = _check_faults(faults)
    last = cfg.start + timedelta(days=days - 1)
    if fault_set and fault_date is None:
        fault_date = last
    if fault_date and not (cfg.start <= fault_date <= last):
        raise NewsrecError(f"--fault-date {fault_date} is outside the seeded days {cfg.start}..{last}")
    from pipelines.warehouse.migrations import migrate

    migrate()
    pubs = make_publications(cfg)
    results: list[DayResult] = []
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "TRUNCATE warehouse.events, warehouse.articles, warehouse.users, "
            "warehouse.publications, sim.config, sim.publications, sim.articles, sim.users, "
            "sim.user_taste, sim.user_publication_affinity, sim.region_category_bias, "
            "sim.impression_truth, sim.days"
        )
        cur.execute("INSERT INTO sim.config (params) VALUES (%s)", (cfg.to_json(),))
        db.copy_frame(cur, "warehouse.publications", pubs.frame)
        db.copy_frame(
            cur,
            "sim.publications",
            pd.DataFrame(
                {
                    "publication_id": pubs.frame["publication_id"],
                    "quality": pubs.quality.round(4),
                    "output_weight": pubs.output_weight.round(4),
                }
            ),
        )
        bias = region_category_bias(cfg)
        db.copy_frame(
            cur,
            "sim.region_category_bias",
            pd.DataFrame(
                [(r, c, round(float(bias[i, j]), 4)) for i, r in enumerate(REGIONS) for j, c in enumerate(CATEGORIES)],
                columns=["region", "category", "bias"],
            ),
        )
        base = make_base_users(cfg, pubs)
        _write_users(cur, base)
        # A lead-in day of articles so the first simulated morning has something to show.
        lead_in = cfg.start - timedelta(days=1)
        _generate_day(cur, conn, cfg, lead_in, pubs, base, frozenset(), with_events=False)
        users = base
        with _progress(days, "seeding") as bar:
            for offset in range(days):
                day = cfg.start + timedelta(days=offset)
                if offset and cfg.new_users_each_day:
                    yesterday = day - timedelta(days=1)
                    users = concat_users([users, make_new_users(cfg, yesterday, pubs)])
                day_faults = fault_set if day == fault_date else frozenset()
                results.append(_generate_day(cur, conn, cfg, day, pubs, users, day_faults))
                bar.update(1)
        cur.execute("ANALYZE warehouse.events")
    return results


def load_config() -> SimConfig:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('sim.config')")
        if cur.fetchone()[0] is None:
            raise NewsrecError("the warehouse is not migrated; run `newsrec db migrate` first")
        cur.execute("SELECT params FROM sim.config")
        row = cur.fetchone()
    if not row:
        raise NewsrecError("no simulated world yet; run `newsrec warehouse seed` first")
    return SimConfig.from_json(row[0])


def simulate_day(
    day: date,
    faults: list[str] | tuple[str, ...] = (),
    drift_from: date | None = None,
) -> DayResult:
    """Append (or replace) one day of the simulated world, for nightly runs."""
    fault_set = _check_faults(faults)
    cfg = load_config()
    if day < cfg.start:
        raise NewsrecError(f"--date {day} is before the simulation start {cfg.start}")
    with db.transaction() as conn, conn.cursor() as cur:
        if drift_from is not None:
            cfg.drift_from = drift_from
            cur.execute("UPDATE sim.config SET params = %s", (cfg.to_json(),))
        pubs = make_publications(cfg)
        users = users_on(cfg, day, pubs)
        live = load_live_lists(conn, day)
        result = _generate_day(cur, conn, cfg, day, pubs, users, fault_set, live=live)
    return result


def shown_batch(conn: Any, day: date) -> int | None:
    """The batch whose lists readers see on ``day``: the live one when it was published for an
    earlier date (the nightly case: D-1's batch while D is simulated), else the newest complete
    batch of an earlier date (re-running a past day shows what was live then, if still kept)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT b.batch_id FROM serving.live l JOIN serving.batches b USING (batch_id) "
            "WHERE b.status = 'complete' AND b.data_date < %s",
            (day,),
        )
        row = cur.fetchone()
        if row is None:
            cur.execute(
                "SELECT batch_id FROM serving.batches WHERE status = 'complete' AND data_date < %s "
                "ORDER BY data_date DESC, batch_id DESC LIMIT 1",
                (day,),
            )
            row = cur.fetchone()
    return int(row[0]) if row else None


def load_live_lists(conn: Any, day: date) -> LiveLists | None:
    """The published lists shown on ``day`` with what the simulator needs of their articles."""
    import pyarrow as pa

    batch_id = shown_batch(conn, day)
    if batch_id is None:
        return None
    lists = db.read_frame(
        conn,
        "SELECT r.user_id, r.rank, r.article_id, r.arm, coalesce(r.model_version, b.model_version) AS model_version "
        "FROM serving.recommendations r JOIN serving.batches b USING (batch_id) WHERE r.batch_id = %s",
        (batch_id,),
        {"arm": pa.string(), "model_version": pa.string()},
    )
    fallback = db.read_frame(
        conn, "SELECT region, rank, article_id FROM serving.fallback_recommendations WHERE batch_id = %s", (batch_id,)
    )
    articles = db.read_frame(
        conn,
        "SELECT a.article_id, a.publication_id, a.category, a.published_at, s.quality "
        "FROM warehouse.articles a JOIN sim.articles s USING (article_id) WHERE a.article_id IN ("
        "SELECT article_id FROM serving.recommendations WHERE batch_id = %s UNION "
        "SELECT article_id FROM serving.fallback_recommendations WHERE batch_id = %s)",
        (batch_id, batch_id),
    )
    if lists.empty and fallback.empty:
        return None
    if lists.empty:
        lists = pd.DataFrame(columns=["user_id", "rank", "article_id", "arm", "model_version"])
    fallback = fallback if not fallback.empty else pd.DataFrame(columns=["region", "rank", "article_id"])
    for frame in (lists, fallback):
        for column in ("rank", "article_id"):
            frame[column] = frame[column].astype(np.int64)
    lists["user_id"] = lists["user_id"].astype(np.int64)
    for column in ("arm", "model_version"):
        lists[column] = lists[column].astype(object).where(lists[column].notna(), None)
    pool = ArticlePool.from_frame(articles) if not articles.empty else None
    table = pd.DataFrame(
        {
            "article_id": pool.article_id if pool else np.array([], np.int64),
            "publication_id": pool.publication_id if pool else np.array([], np.int64),
            "category_idx": pool.category_idx if pool else np.array([], np.int64),
            "published_s": pool.published_s if pool else np.array([], np.float64),
            "quality": pool.quality if pool else np.array([], np.float64),
        }
    )
    return LiveLists(batch_id, lists, fallback, table)
