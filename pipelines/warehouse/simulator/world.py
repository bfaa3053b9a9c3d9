"""The simulated world: its configuration, the publications, the users with their latent tastes
and the articles published each day. All are pure functions of the config, drawn from numpy
generators keyed by (seed, stream, day), so a day drawn twice is the same day."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import known_fields, params
from pipelines.core.errors import NewsrecError

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


def keyed_rng(seed: int, *keys: int) -> np.random.Generator:
    """The generator of one stream of draws: keys are the stream number, then the day number."""
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
# Publications, users, articles
# --------------------------------------------------------------------------------------


@dataclass
class Publications:
    frame: pd.DataFrame  # warehouse.publications rows
    quality: np.ndarray
    output_weight: np.ndarray
    category_cdf: np.ndarray  # (n_pub, n_cat) cumulative category mix


def make_publications(cfg: SimConfig) -> Publications:
    rng = keyed_rng(cfg.seed, 1)
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
    return keyed_rng(cfg.seed, 2).normal(0, 0.35, size=(len(REGIONS), len(CATEGORIES)))


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
    rng = keyed_rng(cfg.seed, 3)
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
    users = _draw_users(cfg, keyed_rng(cfg.seed, 4, day_number(day)), ids, signup, pubs)
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
    rng = keyed_rng(cfg.seed, 5, day_number(day))
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
