"""Pure, vectorised feature transforms on pandas frames (no I/O).

Two steps keep the nightly work proportional to one day of events:
1. ``event_partials``: one day's events -> additive daily partials per (user, category) and
   per article. Partials of a user-id range are complete for those users, and article
   partials from different ranges add up.
   A read with no logged impression (``impression_id`` NULL: MIND's history, a team's organic
   reads) counts as a read and in ``organic_reads``, never as the numerator of a
   click-through rate: every CTR is (reads - organic_reads) / impressions, so it cannot
   exceed 1. The simulator logs an impression for every read (organic_reads = 0).
2. ``user_features`` / ``article_*``: roll the last 28 daily partials up into the feature
   views of :mod:`pipelines.features.catalog`.
Beam runs these on shards; the benchmark runs the same functions on whole frames.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from pipelines.core.config import params
from pipelines.features.catalog import FEATURES, TIMESTAMP, view_columns

WINDOW_DAYS = 28
SHORT_WINDOW_DAYS = 7

UC_PARTIAL_COLUMNS = {
    "user_id": "int64",
    "category": "object",
    "impressions": "int64",
    "reads": "int64",
    "dwell_s": "float64",
    "last_read_ts": "float64",
    "organic_reads": "int64",
}
ARTICLE_PARTIAL_COLUMNS = {
    "article_id": "int64",
    "impressions": "int64",
    "reads": "int64",
    "dwell_s": "float64",
    "organic_reads": "int64",
}
EVENT_COLUMNS = ["event_id", "user_id", "article_id", "category", "event_type", "ts", "dwell_seconds"]
# Optional event column: a read's impression; without the column every read came from one.
IMPRESSION_ID = "impression_id"

_DTYPES = {"int64": "int64", "float32": "float32", "string": "object"}


def end_of_day(day: date) -> datetime:
    """When features of day D become known: D+1 00:00 UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def request_time(day: date) -> pd.Timestamp:
    """When D's lists are read: request-time features (article age) of scoring and explanations
    are computed as of this hour of D+1 (``scoring.request_offset_hours``)."""
    hours = float(params("scoring").get("request_offset_hours", 8))
    return pd.Timestamp(end_of_day(day)) + timedelta(hours=hours)


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    if "organic_reads" in columns and "organic_reads" not in frame.columns:
        # partials written before organic reads were counted: every read had an impression
        frame = frame.assign(organic_reads=0)
    frame = frame.reindex(columns=list(columns))
    return frame.astype(columns)


def empty_partial(kind: str) -> pd.DataFrame:
    return _typed(pd.DataFrame(), UC_PARTIAL_COLUMNS if kind == "user_category" else ARTICLE_PARTIAL_COLUMNS)


def event_partials(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily partials (user x category, article) from one day's events.

    Duplicate event ids count once; dwell that is missing or not positive adds no time (the
    quality gate reports such rows; features must not go negative because of them). A read
    whose ``impression_id`` is NULL is also an organic read (see the module's docstring).
    """
    if events.empty:
        return empty_partial("user_category"), empty_partial("article")
    ev = events.drop_duplicates("event_id")
    is_read = (ev["event_type"] == "read").to_numpy()
    shown = ev[IMPRESSION_ID].notna().to_numpy() if IMPRESSION_ID in ev.columns else np.ones(len(ev), bool)
    dwell = ev["dwell_seconds"].to_numpy(dtype=np.float64, na_value=np.nan)
    frame = pd.DataFrame(
        {
            "user_id": ev["user_id"].to_numpy(np.int64),
            "article_id": ev["article_id"].to_numpy(np.int64),
            "category": ev["category"].to_numpy(),
            "impressions": (~is_read).astype(np.int64),
            "reads": is_read.astype(np.int64),
            "organic_reads": (is_read & ~shown).astype(np.int64),
            "dwell_s": np.where(is_read & (dwell > 0), dwell, 0.0),
            "read_ts": np.where(is_read, ev["ts"].to_numpy(np.float64), np.nan),
        }
    )
    uc = (
        frame.groupby(["user_id", "category"], sort=True)
        .agg(
            impressions=("impressions", "sum"),
            reads=("reads", "sum"),
            dwell_s=("dwell_s", "sum"),
            last_read_ts=("read_ts", "max"),
            organic_reads=("organic_reads", "sum"),
        )
        .reset_index()
    )
    art = (
        frame.groupby("article_id", sort=True)
        .agg(
            impressions=("impressions", "sum"),
            reads=("reads", "sum"),
            dwell_s=("dwell_s", "sum"),
            organic_reads=("organic_reads", "sum"),
        )
        .reset_index()
    )
    return _typed(uc, UC_PARTIAL_COLUMNS), _typed(art, ARTICLE_PARTIAL_COLUMNS)


def merge_article_partials(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Add up article partials computed on different user ranges."""
    parts = [_typed(p, ARTICLE_PARTIAL_COLUMNS) for p in parts if not p.empty]
    if not parts:
        return empty_partial("article")
    merged = pd.concat(parts).groupby("article_id", sort=True).sum(numeric_only=True).reset_index()
    return _typed(merged, ARTICLE_PARTIAL_COLUMNS)


def merge_user_partials(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """User-range partials are disjoint: concatenate in key order."""
    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty_partial("user_category")
    merged = pd.concat(parts).sort_values(["user_id", "category"], kind="stable")
    return _typed(merged.reset_index(drop=True), UC_PARTIAL_COLUMNS)


def _feature_frame(view: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Order and type the columns of a view exactly as the definitions say."""
    dtypes = {f.name: _DTYPES[f.dtype] for f in FEATURES if f.view == view}
    columns = view_columns(view)
    out = frame.reindex(columns=columns)
    for name, dtype in dtypes.items():
        out[name] = out[name].astype(dtype)
    out[TIMESTAMP] = pd.to_datetime(out[TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    return out.reset_index(drop=True)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype(np.float64)
    return (num / den.where(den > 0)).astype(np.float32)


def _ctr(reads: pd.Series, organic_reads: pd.Series, impressions: pd.Series) -> pd.Series:
    """Reads that came from a logged impression, per impression (NaN without impressions)."""
    return _ratio(reads - organic_reads, impressions)


def user_features(
    day: date, partials: dict[date, pd.DataFrame], users: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``user_activity`` (every user signed up by D) and ``user_category`` rows for day D.

    ``partials`` maps each day of the 28-day window to its user x category partial (missing
    days count as no activity); ``users`` has user_id, region, signup_date, plan and
    declared_interests (Postgres array text, e.g. ``{sports,news}``).
    """
    ts = end_of_day(day)
    frames = []
    for d, part in partials.items():
        age = (day - d).days
        if 0 <= age < WINDOW_DAYS and not part.empty:
            frames.append(_typed(part, UC_PARTIAL_COLUMNS).assign(age=age))
    window = (
        pd.concat(frames, ignore_index=True)
        if frames
        else empty_partial("user_category").assign(age=pd.Series(dtype="int64"))
    )

    sums = {c: (c, "sum") for c in ("impressions", "reads", "dwell_s", "organic_reads")}
    uc = window.groupby(["user_id", "category"], sort=True).agg(**sums).reset_index()
    user28 = window.groupby("user_id").agg(
        reads=("reads", "sum"),
        dwell_s=("dwell_s", "sum"),
        last_read_ts=("last_read_ts", "max"),
    )
    active_days = window[window["impressions"] > 0].groupby("user_id")["age"].nunique()
    user7 = window[window["age"] < SHORT_WINDOW_DAYS].groupby("user_id").agg(**sums)

    u = users.copy()
    u["signup_date"] = pd.to_datetime(u["signup_date"]).dt.date
    u = u[u["signup_date"] <= day].set_index("user_id").sort_index()
    idx = u.index
    imp7 = user7["impressions"].reindex(idx, fill_value=0)
    reads7 = user7["reads"].reindex(idx, fill_value=0)
    organic7 = user7["organic_reads"].reindex(idx, fill_value=0)
    reads28 = user28["reads"].reindex(idx, fill_value=0)
    dwell28 = user28["dwell_s"].reindex(idx, fill_value=0.0)
    last_read = user28["last_read_ts"].reindex(idx)
    interests = u["declared_interests"].fillna("").astype(str).str.strip("{}").str.replace('"', "", regex=False)
    activity = pd.DataFrame(
        {
            "user_id": idx.to_numpy(np.int64),
            TIMESTAMP: ts,
            "user_impressions_7d": imp7.to_numpy(),
            "user_reads_7d": reads7.to_numpy(),
            "user_ctr_7d": _ctr(reads7, organic7, imp7).to_numpy(),
            "user_dwell_7d_s": user7["dwell_s"].reindex(idx, fill_value=0.0).to_numpy(),
            "user_reads_28d": reads28.to_numpy(),
            "user_dwell_28d_s": dwell28.to_numpy(),
            "user_mean_dwell_28d_s": _ratio(dwell28, reads28).to_numpy(),
            "user_days_since_last_read": ((ts.timestamp() - last_read) / 86_400).to_numpy(),
            "user_active_days_28d": active_days.reindex(idx, fill_value=0).to_numpy(),
            "user_tenure_days": [(day + timedelta(days=1) - s).days for s in u["signup_date"]],
            "user_is_trial": (u["plan"] == "trial").astype(np.int64).to_numpy(),
            "user_region": u["region"].to_numpy(),
            "user_declared_interests": interests.to_numpy(),
        }
    )

    user_dwell = uc.groupby("user_id")["dwell_s"].transform("sum")
    category = pd.DataFrame(
        {
            "user_id": uc["user_id"],
            "category": uc["category"],
            TIMESTAMP: ts,
            "user_cat_impressions_28d": uc["impressions"],
            "user_cat_reads_28d": uc["reads"],
            "user_cat_dwell_28d_s": uc["dwell_s"],
            "user_cat_dwell_share_28d": _ratio(uc["dwell_s"], user_dwell),
            "user_cat_ctr_28d": _ctr(uc["reads"], uc["organic_reads"], uc["impressions"]),
        }
    )
    return _feature_frame("user_activity", activity), _feature_frame("user_category", category)


def article_engagement(day: date, partial: pd.DataFrame) -> pd.DataFrame:
    """``article_engagement`` for day D from the merged article partial of D."""
    partial = _typed(partial, ARTICLE_PARTIAL_COLUMNS)
    return _feature_frame(
        "article_engagement",
        pd.DataFrame(
            {
                "article_id": partial["article_id"],
                TIMESTAMP: end_of_day(day),
                "article_impressions_24h": partial["impressions"],
                "article_reads_24h": partial["reads"],
                "article_ctr_24h": _ctr(partial["reads"], partial["organic_reads"], partial["impressions"]),
                "article_mean_dwell_24h_s": _ratio(partial["dwell_s"], partial["reads"]),
            }
        ),
    )


def article_attributes(articles: pd.DataFrame) -> pd.DataFrame:
    """``article_attributes`` rows, timestamped at publication (known from then on).

    ``articles`` has article_id, category, trust_score, misinformation_flag, published_ts.
    """
    published = pd.to_datetime(articles["published_ts"], unit="s", utc=True)
    flagged = articles["misinformation_flag"].astype("int64")
    return _feature_frame(
        "article_attributes",
        pd.DataFrame(
            {
                "article_id": articles["article_id"],
                TIMESTAMP: published,
                "article_category": articles["category"],
                "article_publication_trust": articles["trust_score"],
                "article_publication_flagged": flagged,
                "article_published_ts": articles["published_ts"].astype(np.int64),
            }
        ).sort_values("article_id"),
    )
