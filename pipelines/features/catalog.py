"""The features, one line each: name, type, view and what it means.

This table is the single source for the Feast schema (``repo/``), the Beam/pandas transforms
(which must produce exactly these columns) and the model's matrix. Names say the window and
the unit. A partition for day D holds what is known at the end of D (timestamp D+1 00:00 UTC),
except article attributes, which are known from the moment the article is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # "int64" | "float32" | "string"
    view: str
    doc: str


@dataclass(frozen=True)
class View:
    name: str
    entities: tuple[str, ...]
    ttl: timedelta
    online: bool
    doc: str


# Daily views get a TTL of one day: a point-in-time join then only uses the partition of the
# day before the impression, so an entity missing from that partition reads as "no activity"
# instead of silently picking up an older, stale row.
VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View("user_activity", ("user",), timedelta(days=1), True, "one row per user, every day"),
        View(
            "user_category",
            ("user", "category"),
            timedelta(days=1),
            False,
            "user x category pairs with impressions in the last 28 days",
        ),
        View("article_engagement", ("article",), timedelta(days=1), True, "articles shown during the day"),
        View(
            "article_attributes",
            ("article",),
            timedelta(days=14),
            True,
            "static facts of articles, timestamped at publication",
        ),
    )
}

FEATURES: tuple[Feature, ...] = (
    # user_activity
    Feature("user_impressions_7d", "int64", "user_activity", "articles shown to the user in the last 7 days"),
    Feature("user_reads_7d", "int64", "user_activity", "articles the user opened in the last 7 days"),
    Feature("user_ctr_7d", "float32", "user_activity", "reads of shown articles / impressions, 7 days (NaN without)"),
    Feature("user_dwell_7d_s", "float32", "user_activity", "seconds spent reading in the last 7 days"),
    Feature("user_reads_28d", "int64", "user_activity", "articles opened in the last 28 days"),
    Feature("user_dwell_28d_s", "float32", "user_activity", "seconds spent reading in the last 28 days"),
    Feature("user_mean_dwell_28d_s", "float32", "user_activity", "mean seconds per read over 28 days"),
    Feature(
        "user_days_since_last_read",
        "float32",
        "user_activity",
        "days from the last read to the end of D (28d cap)",
    ),
    Feature("user_active_days_28d", "int64", "user_activity", "days with at least one impression in 28 days"),
    Feature("user_tenure_days", "int64", "user_activity", "days since signup at the end of D"),
    Feature("user_is_trial", "int64", "user_activity", "1 on a trial plan, 0 when paying"),
    Feature("user_region", "string", "user_activity", "LATAM, AFRICA or NA"),
    Feature("user_declared_interests", "string", "user_activity", "categories the user picked, comma separated"),
    # user_category
    Feature("user_cat_impressions_28d", "int64", "user_category", "impressions of this category, 28 days"),
    Feature("user_cat_reads_28d", "int64", "user_category", "reads in this category, 28 days"),
    Feature("user_cat_dwell_28d_s", "float32", "user_category", "seconds read in this category, 28 days"),
    Feature(
        "user_cat_dwell_share_28d",
        "float32",
        "user_category",
        "share of the user's 28-day dwell in this category",
    ),
    Feature("user_cat_ctr_28d", "float32", "user_category", "reads of shown articles / impressions, category, 28d"),
    # article_engagement
    Feature("article_impressions_24h", "int64", "article_engagement", "times shown during day D"),
    Feature("article_reads_24h", "int64", "article_engagement", "times opened during day D"),
    Feature("article_ctr_24h", "float32", "article_engagement", "reads of shown articles / impressions during day D"),
    Feature("article_mean_dwell_24h_s", "float32", "article_engagement", "mean seconds per read during day D"),
    # article_attributes
    Feature("article_category", "string", "article_attributes", "the article's category"),
    Feature("article_publication_trust", "float32", "article_attributes", "trust score of the publication, 0..1"),
    Feature(
        "article_publication_flagged",
        "int64",
        "article_attributes",
        "1 if the publication spreads misinformation",
    ),
    Feature("article_published_ts", "int64", "article_attributes", "publication time, epoch seconds (for age)"),
)

ENTITY_KEYS = {
    "user": ("user_id", "int64"),
    "article": ("article_id", "int64"),
    "category": ("category", "string"),
}
FEATURE_SERVICE = "ranker_v1"
TIMESTAMP = "event_timestamp"


def view_features(view: str) -> list[Feature]:
    return [f for f in FEATURES if f.view == view]


def view_columns(view: str) -> list[str]:
    """Columns of a view's partition files, in order: entity keys, timestamp, features."""
    keys = [ENTITY_KEYS[e][0] for e in VIEWS[view].entities]
    return [*keys, TIMESTAMP, *(f.name for f in view_features(view))]
