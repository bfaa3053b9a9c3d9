"""The expectation suites, defined in code as plain data and versioned.

A :class:`Check` names one Great Expectations expectation, its arguments, a severity and the
reason it exists. Only a failed *critical* check stops the pipeline; a *warning* is reported
and the run goes on. Keeping checks as data (GE is imported only in :func:`build_suite`) lets
the unit tests inspect the suites without the ~4 s GE import.

Values known only at run time (how many users had signed up by D, how many articles were
shown) are GE suite parameters (``{"$PARAMETER": name}``), so a suite's definition does not
change from day to day. Thresholds come from the ``quality`` section of ``params.yaml`` and are
stored with every result next to the suite version.

Bump a stage's version whenever a check is added, removed or changes meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pipelines.features.catalog import ENTITY_KEYS, VIEWS, view_columns, view_features

if TYPE_CHECKING:
    import great_expectations as gx

Severity = Literal["critical", "warning"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning")

SUITE_VERSIONS: dict[str, str] = {"raw": "raw-2", "features": "features-2"}

# Columns of warehouse.events that the feature ETL and the trainer read.
RAW_EVENT_COLUMNS = ("event_id", "impression_id", "user_id", "article_id", "event_type", "event_ts", "dwell_seconds")
# 'unknown': a user the source gave no region (migration 0018); whole sources without regions
# have the region checks not applicable (FEATURE_NEEDS)
REGIONS = ("LATAM", "AFRICA", "NA", "unknown")


@dataclass(frozen=True)
class Check:
    name: str  # stable id, unique within a stage: "<asset>.<what>"
    expectation: str  # class name in great_expectations.expectations
    kwargs: dict[str, Any]
    severity: Severity
    why: str
    reads_only: bool = False  # evaluate on rows with event_type == 'read' only
    meta: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # data-profile parts without which the check is not applicable
    band: bool = False  # compares D with trailing days: only warns without enough history

    @property
    def asset(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")


def param(name: str) -> dict[str, str]:
    """A GE suite parameter, resolved from the values passed at validation time."""
    return {"$PARAMETER": name}


# --------------------------------------------------------------------------------------
# (a) The raw extract of day D
# --------------------------------------------------------------------------------------


def raw_checks(p: dict[str, Any]) -> list[Check]:
    """Checks on ``raw_events`` (events of D with lookup flags) and ``raw_day`` (one summary row).

    ``p`` is ``params("quality")["raw"]``.
    """
    ev = "raw_events"
    checks = [
        Check(
            f"{ev}.columns_present",
            "ExpectTableColumnsToMatchSet",
            {"column_set": list(RAW_EVENT_COLUMNS), "exact_match": False},
            "critical",
            "The feature ETL and the trainer read these columns of warehouse.events.",
        ),
        *(
            Check(
                f"{ev}.{col}_not_null",
                "ExpectColumnValuesToNotBeNull",
                {"column": col},
                "critical",
                "Keys and timestamps identify an event; without them it cannot be attributed.",
            )
            for col in ("event_id", "user_id", "article_id", "event_type", "event_ts")
        ),
        Check(
            f"{ev}.event_type_known",
            "ExpectColumnValuesToBeInSet",
            {"column": "event_type", "value_set": ["impression", "read"]},
            "critical",
            "Labels are derived from impressions and reads; other types would be silently dropped.",
        ),
        Check(
            f"{ev}.event_id_unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "event_id"},
            "critical",
            "Repeated event ids mean a double load: counts, CTR and labels would be inflated.",
        ),
        Check(
            f"{ev}.read_dwell_present",
            "ExpectColumnValuesToNotBeNull",
            {"column": "dwell_seconds", "mostly": 1.0 - float(p["read_dwell_max_null_share"])},
            "critical",
            "Dwell is the training label; reads without it bias dwell features and labels downwards.",
            reads_only=True,
            needs=("dwell",),
        ),
        Check(
            f"{ev}.read_dwell_positive",
            "ExpectColumnValuesToBeBetween",
            {"column": "dwell_seconds", "min_value": 0, "strict_min": True},
            "critical",
            "A read lasts more than zero seconds; zero or negative dwell is a tracking or loading bug.",
            reads_only=True,
            needs=("dwell",),
        ),
        Check(
            f"{ev}.read_dwell_at_most_max",
            "ExpectColumnValuesToBeBetween",
            {"column": "dwell_seconds", "max_value": float(p["dwell_max_s"])},
            "warning",
            "Very long dwell is usually a tab left open: plausible behaviour, not a broken pipeline.",
            reads_only=True,
            needs=("dwell",),
        ),
        Check(
            f"{ev}.user_known",
            "ExpectColumnValuesToBeInSet",
            {"column": "user_known", "value_set": [True]},
            "critical",
            "Every event's user must exist in warehouse.users (user features and regions join on it).",
        ),
        Check(
            f"{ev}.article_known",
            "ExpectColumnValuesToBeInSet",
            {"column": "article_known", "value_set": [True]},
            "critical",
            "Every event's article must exist in warehouse.articles (category and publication join on it).",
        ),
        Check(
            f"{ev}.article_metadata_known",
            "ExpectColumnValuesToBeInSet",
            {
                "column": "article_metadata_known",
                "value_set": [True],
                "mostly": float(p["article_metadata_known_min_share"]),
            },
            "critical",
            "Events of articles the catalogue does not describe (kept with unknown metadata) count in "
            "behaviour features but are never candidates; too many means a broken catalogue export.",
        ),
        Check(
            f"{ev}.article_metadata_mostly_known",
            "ExpectColumnValuesToBeInSet",
            {
                "column": "article_metadata_known",
                "value_set": [True],
                "mostly": float(p["article_metadata_known_warn_share"]),
            },
            "warning",
            "Some events' articles have unknown metadata (missing from the catalogue): worth a look.",
        ),
        Check(
            f"{ev}.not_before_publication",
            "ExpectColumnValuesToBeInSet",
            {
                "column": "after_publication",
                "value_set": [True],
                "mostly": 1.0 - float(p["before_publication_max_share"]),
            },
            "critical",
            "An event before its article was published means wrong clocks or publish times (age features).",
            needs=("publish_times",),
        ),
    ]
    lo, hi = p["article_band"]
    day = "raw_day"
    checks += [
        Check(
            f"{day}.has_events",
            "ExpectColumnValuesToBeBetween",
            {"column": "n_events", "min_value": 1},
            "critical",
            "Freshness: a day without events means the extract did not arrive.",
        ),
        Check(
            f"{day}.day_complete",
            "ExpectColumnValuesToBeBetween",
            {"column": "latest_event_hour", "min_value": float(p["min_latest_event_hour"])},
            "warning",
            "Freshness: the last event of D should be late in the day (UTC), else the day may be partial.",
        ),
        Check(
            f"{day}.articles_in_band",
            "ExpectColumnValuesToBeBetween",
            {"column": "articles_ratio", "min_value": float(lo), "max_value": float(hi)},
            "critical",
            "Articles published on D against the trailing median: a thin (or doubled) day means a broken feed.",
            needs=("publish_times",),
            band=True,
        ),
        Check(
            f"{day}.article_history",
            "ExpectColumnValuesToBeBetween",
            {"column": "history_days", "min_value": 1},
            "warning",
            "Without earlier days the article-count band cannot be checked.",
            needs=("publish_times",),
        ),
    ]
    return checks


# --------------------------------------------------------------------------------------
# (b) The built features of day D
# --------------------------------------------------------------------------------------

# Sane values of every numeric feature: (min, max), None = unbounded on that side.
FEATURE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "user_impressions_7d": (0, None),
    "user_reads_7d": (0, None),
    "user_ctr_7d": (0, 1),
    "user_dwell_7d_s": (0, None),
    "user_reads_28d": (0, None),
    "user_dwell_28d_s": (0, None),
    "user_mean_dwell_28d_s": (0, None),
    "user_days_since_last_read": (0, 28),
    "user_active_days_28d": (0, 28),
    "user_tenure_days": (0, None),
    "user_is_trial": (0, 1),
    "user_cat_impressions_28d": (0, None),
    "user_cat_reads_28d": (0, None),
    "user_cat_dwell_28d_s": (0, None),
    "user_cat_dwell_share_28d": (0, 1),
    "user_cat_ctr_28d": (0, 1),
    "article_impressions_24h": (0, None),
    "article_reads_24h": (0, None),
    "article_ctr_24h": (0, 1),
    "article_mean_dwell_24h_s": (0, None),
    "article_publication_trust": (0, 1),
    "article_publication_flagged": (0, 1),
    "article_published_ts": (0, None),
}
# Row counts that must match the warehouse (suite parameter per view).
ROW_COUNT_PARAMS = {
    "user_activity": "users_signed_up",
    "article_engagement": "articles_shown",
    "article_attributes": "articles_published",
}
VALUE_SETS = {"user_region": list(REGIONS)}
# Features whose values come from an optional profile part (all dwell features need dwell).
FEATURE_NEEDS: dict[str, tuple[str, ...]] = {
    "user_region": ("regions",),
    "article_publication_trust": ("publications",),
    "article_publication_flagged": ("publications",),
    "article_published_ts": ("publish_times",),
}


def feature_needs(name: str) -> tuple[str, ...]:
    """The profile parts a feature's checks need."""
    return ("dwell",) if "dwell" in name else FEATURE_NEEDS.get(name, ())


def feature_checks(p: dict[str, Any]) -> list[Check]:
    """Checks on each feature view's partition of D; ``p`` is ``params("quality")["features"]``.

    Ratio features are NaN when their denominator is zero, so they get a null-share limit
    (warning: a column that is mostly missing means a broken join); every other column must be
    complete.
    """
    max_null = {k: float(v) for k, v in p["max_null_share"].items()}
    checks: list[Check] = []
    for view in VIEWS:
        keys = [ENTITY_KEYS[e][0] for e in VIEWS[view].entities]
        checks.append(
            Check(
                f"{view}.columns",
                "ExpectTableColumnsToMatchSet",
                {"column_set": view_columns(view), "exact_match": True},
                "critical",
                "Feast and the model matrix read exactly the columns of the feature definitions.",
            )
        )
        unique = (
            Check(
                f"{view}.key_unique",
                "ExpectColumnValuesToBeUnique",
                {"column": keys[0]},
                "critical",
                "One row per entity and day, else the point-in-time join duplicates training rows.",
            )
            if len(keys) == 1
            else Check(
                f"{view}.key_unique",
                "ExpectCompoundColumnsToBeUnique",
                {"column_list": keys},
                "critical",
                "One row per entity pair and day, else the point-in-time join duplicates training rows.",
            )
        )
        checks.append(unique)
        if view in ROW_COUNT_PARAMS:
            checks.append(
                Check(
                    f"{view}.row_count",
                    "ExpectTableRowCountToEqual",
                    {"value": param(ROW_COUNT_PARAMS[view])},
                    "critical",
                    "Rows must match the warehouse: "
                    + {
                        "user_activity": "one per user signed up by D.",
                        "article_engagement": "one per distinct article shown on D.",
                        "article_attributes": "one per article published on D.",
                    }[view],
                )
            )
        for name in keys:
            checks.append(
                Check(
                    f"{view}.{name}_not_null",
                    "ExpectColumnValuesToNotBeNull",
                    {"column": name},
                    "critical",
                    "Entity keys identify the row.",
                )
            )
        for feature in view_features(view):
            name = feature.name
            if name in max_null:
                checks.append(
                    Check(
                        f"{view}.{name}_null_share",
                        "ExpectColumnValuesToNotBeNull",
                        {"column": name, "mostly": 1.0 - max_null[name]},
                        "warning",
                        "A ratio is missing when its denominator is zero; far more than usual means a bad join.",
                        needs=feature_needs(name),
                    )
                )
            else:
                checks.append(
                    Check(
                        f"{view}.{name}_not_null",
                        "ExpectColumnValuesToNotBeNull",
                        {"column": name},
                        "critical",
                        "Counts, attributes and categories are always defined.",
                        needs=feature_needs(name),
                    )
                )
            if name in FEATURE_RANGES:
                lo, hi = FEATURE_RANGES[name]
                checks.append(
                    Check(
                        f"{view}.{name}_range",
                        "ExpectColumnValuesToBeBetween",
                        {"column": name, "min_value": lo, "max_value": hi},
                        "critical",
                        "Counts and durations are never negative; rates and shares lie in [0, 1].",
                        needs=feature_needs(name),
                    )
                )
            if name in VALUE_SETS:
                checks.append(
                    Check(
                        f"{view}.{name}_known",
                        "ExpectColumnValuesToBeInSet",
                        {"column": name, "value_set": VALUE_SETS[name]},
                        "critical",
                        "Regions are a closed set; anything else breaks the model's categorical encoding.",
                        needs=feature_needs(name),
                    )
                )
    return checks


def stage_checks(stage: str, p: dict[str, Any]) -> list[Check]:
    """All checks of a stage ("raw" or "features") for the ``quality`` params ``p``."""
    if stage == "raw":
        return raw_checks(p["raw"])
    if stage == "features":
        return feature_checks(p["features"])
    raise ValueError(f"unknown quality stage {stage!r}")


def build_suite(stage: str, asset: str, checks: list[Check]) -> gx.ExpectationSuite:
    """The GE suite of one asset: each check becomes an expectation with its severity."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    suite = gx.ExpectationSuite(
        name=f"{stage}.{asset}",
        meta={"newsrec_suite_version": SUITE_VERSIONS[stage]},
    )
    for check in checks:
        if check.asset != asset:
            continue
        kwargs = dict(check.kwargs)
        if check.reads_only:
            kwargs["row_condition"] = Column("event_type") == "read"
        expectation = getattr(gxe, check.expectation)(
            **kwargs,
            severity=check.severity,
            notes=check.why,
            meta={"check": check.name, **check.meta},
        )
        suite.add_expectation(expectation)
    return suite
