"""The data profile: what the warehouse's source really has, stored in the warehouse.

A real export is rarely shaped like the simulator's data: MIND has no dwell, no regions, one
publisher and no publish times, and does not document that its list order is the display
order. The profile says which of these *parts* the source has, so that stages switch off
what cannot apply (the quality gate reports such checks as "not applicable") instead of
people editing ``params.yaml``.

It lives in ``warehouse.profile`` (one row). No row means the **full profile** (everything
present): every warehouse written before profiles existed, and the simulator, behave exactly
as before. The simulator saves the full profile, importers save theirs, and a team sets its
own with ``newsrec warehouse profile`` (or stores what :func:`infer` reads from the data).
"""

from __future__ import annotations

import getpass
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.errors import NewsrecError
from pipelines.warehouse.unknown_articles import UNKNOWN_PUBLICATION_ID

# Each part: what it means, when `infer` finds it absent, and what it switches on today.
PARTS: dict[str, tuple[str, str, str]] = {
    "dwell": (
        "reads carry a dwell time (else clicks only)",
        "no read has a dwell_seconds value",
        "dwell grades as labels (else click grades), the model's dwell features and the dwell drift columns; "
        "the raw gate's three dwell checks; the features gate's checks of dwell features",
    ),
    "regions": (
        "users have a known region",
        "no user has a region other than NULL or 'unknown'",
        "the model's region feature and its drift column; the features gate's region check",
    ),
    "publications": (
        "articles come from several publications with trust scores",
        "articles come from one publication, or all their publications share one trust score "
        "(the placeholder publication of unknown articles does not count)",
        "the features gate's checks of the trust and flag features",
    ),
    "publish_times": (
        "articles have real publish times",
        "all articles share one publish time, or 95% of those in events were 'published' at their first event",
        "the raw gate's article band, its history check and its not-before-publication check; "
        "the features gate's checks of the publish-time feature",
    ),
    "positions_known": (
        "impression positions are the slate's display order",
        "no impression has a position (a source that does not document the order sets it by hand)",
        "the position-debiased objective (training falls back to plain LambdaRank and says why)",
    ),
    "surfaces": (
        "events say which surface (page, widget) showed them",
        "all impressions come from one surface",
        "nothing yet (informational)",
    ),
}
# How a one-line summary names a missing part.
MISSING: dict[str, str] = {
    "dwell": "no dwell (clicks only)",
    "regions": "no regions",
    "publications": "no publications",
    "publish_times": "no publish times",
    "positions_known": "positions unknown",
    "surfaces": "no surfaces",
}
# `infer`: publish times are taken as filled in from first-seen times above this share.
FIRST_SEEN_SHARE = 0.95
# The region of a user whose source has no regions (migration 0018), and the publication
# placeholder of articles whose metadata is unknown: neither counts as the part being present.
UNKNOWN_REGION = "unknown"
DEFAULT_SOURCE = "unspecified"


@dataclass(frozen=True)
class DataProfile:
    """Which parts the source has (see :data:`PARTS`), where it comes from, who set it, when.

    ``set_at`` is None for the default (no stored row): the full profile."""

    source: str = DEFAULT_SOURCE
    dwell: bool = True
    regions: bool = True
    publications: bool = True
    publish_times: bool = True
    positions_known: bool = True
    surfaces: bool = True
    set_by: str = ""
    set_at: datetime | None = None

    @property
    def stored(self) -> bool:
        return self.set_at is not None

    @property
    def absent(self) -> list[str]:
        """The parts this source does not have."""
        return [p for p in PARTS if not getattr(self, p)]

    def has(self, part: str) -> bool:
        if part not in PARTS:
            raise KeyError(f"unknown profile part {part!r}; parts: {', '.join(PARTS)}")
        return bool(getattr(self, part))

    def with_parts(self, **changes: Any) -> DataProfile:
        """A copy with some parts (or the source) changed; unknown names are an error."""
        allowed = {*PARTS, "source"}
        unknown = set(changes) - allowed
        if unknown:
            raise KeyError(f"unknown profile part(s) {', '.join(sorted(unknown))}; parts: {', '.join(PARTS)}")
        return replace(self, **changes)

    def parts(self) -> dict[str, Any]:
        """The source and its parts: what a model's signature records (not who set it, or when)."""
        return {"source": self.source, **{part: bool(getattr(self, part)) for part in PARTS}}

    @classmethod
    def from_parts(cls, parts: dict[str, Any]) -> DataProfile:
        """The profile :meth:`parts` recorded (parts it does not name are present)."""
        known = {k: v for k, v in parts.items() if k in PARTS or k == "source"}
        return cls(**known)

    def summary(self) -> str:
        """One line: the source and what it lacks."""
        missing = [MISSING[p] for p in self.absent]
        return f"{self.source}: {', '.join(missing) if missing else 'everything present'}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["set_at"] = self.set_at.isoformat() if self.set_at else None
        return data

    def render(self, title: str = "Data profile") -> str:
        if self.stored:
            origin = f"set by {self.set_by or 'unknown'} at {self.set_at:%Y-%m-%d %H:%M:%S %Z}".rstrip()
        elif self.set_by:
            origin = f"{self.set_by}, not stored"
        else:
            origin = "none stored: the full profile (everything present)"
        lines = [f"{title}: source {self.source} ({origin})"]
        width = max(len(p) for p in PARTS)
        for part, (meaning, _, _) in PARTS.items():
            mark = "yes" if getattr(self, part) else "no "
            lines.append(f"  {part:<{width}}  {mark}  {meaning}")
        return "\n".join(lines)


FULL = DataProfile()


def full(source: str = DEFAULT_SOURCE, set_by: str = "") -> DataProfile:
    """Everything present (what the simulator writes)."""
    return DataProfile(source=source, set_by=set_by)


def _table_exists(cur: Any) -> bool:
    cur.execute(queries.load("profile_table_exists"))
    return bool(cur.fetchone()[0])


def load(conn: Any) -> DataProfile:
    """The stored profile, or the full one when none is stored (or the warehouse predates profiles)."""
    with conn.cursor() as cur:
        if not _table_exists(cur):
            return FULL
        cur.execute(queries.load("profile_load"))
        row = cur.fetchone()
    if row is None:
        return FULL
    names = [f.name for f in fields(DataProfile)]
    return DataProfile(**dict(zip(names, row, strict=True)))


def save(conn: Any, profile: DataProfile, set_by: str | None = None) -> DataProfile:
    """Store ``profile`` (replacing the previous one); returns it as stored (with ``set_at``)."""
    data = profile.to_dict()
    with conn.cursor() as cur:
        if not _table_exists(cur):
            raise NewsrecError("the warehouse has no profile table yet; run `newsrec db migrate`")
    data["set_by"] = set_by if set_by is not None else (profile.set_by or who())
    with conn.cursor() as cur:
        cur.execute(queries.load("profile_save"), data)
        (set_at,) = cur.fetchone()
    return replace(profile, set_by=data["set_by"], set_at=set_at)


def who() -> str:
    """The operating-system user, for "set by" (a container may have none)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown user"


# The columns each inference reads: a part whose columns are missing is inferred absent.
INFER_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "dwell": (("events", "event_type"), ("events", "dwell_seconds")),
    "regions": (("users", "region"),),
    "publications": (
        ("articles", "publication_id"),
        ("publications", "publication_id"),
        ("publications", "trust_score"),
    ),
    "publish_times": (
        ("articles", "article_id"),
        ("articles", "published_at"),
        ("events", "article_id"),
        ("events", "event_ts"),
    ),
    "positions_known": (("events", "event_type"), ("events", "position")),
    "surfaces": (("events", "event_type"), ("events", "surface")),
}


def infer(conn: Any, source: str | None = None, columns: set[tuple[str, str]] | None = None) -> DataProfile:
    """The profile the data shows (each part's rule is in :data:`PARTS`), not stored.

    ``columns`` are the warehouse's (table, column) pairs when the caller already read them
    (``newsrec warehouse check``); a part whose columns are missing is absent."""
    if columns is None:
        columns = warehouse_columns(conn)
    found: dict[str, bool] = {}
    with conn.cursor() as cur:
        for part, needs in INFER_NEEDS.items():
            if not all(n in columns for n in needs):
                found[part] = False
                continue
            cur.execute(
                queries.load(f"profile_infer_{part.removesuffix('_known')}"),
                {"first_seen_share": FIRST_SEEN_SHARE, "unknown_publication_id": UNKNOWN_PUBLICATION_ID},
            )
            found[part] = bool(cur.fetchone()[0])
    return DataProfile(source=source or DEFAULT_SOURCE, set_by="inferred from the data", **found)


def warehouse_columns(conn: Any) -> set[tuple[str, str]]:
    """The (table, column) pairs of the ``warehouse`` schema."""
    with conn.cursor() as cur:
        cur.execute(queries.load("features_warehouse_columns"))
        return {(table, column) for _, table, column in cur.fetchall()}


def update(conn: Any, changes: dict[str, Any], *, from_data: bool = False, set_by: str | None = None) -> DataProfile:
    """Store the profile with ``changes`` (parts, ``source``) applied to the stored one, or to the
    inferred one when ``from_data``; returns what was stored."""
    base = load(conn)
    if from_data:
        base = infer(conn, source=base.source if base.stored else None)
    return save(conn, base.with_parts(**changes), set_by=set_by)


def current() -> DataProfile:
    """The stored profile of the configured warehouse (the full one when none is stored)."""
    with db.transaction() as conn:
        return load(conn)


def store(changes: dict[str, Any], *, from_data: bool = False, set_by: str | None = None) -> DataProfile:
    """:func:`update` on the configured warehouse, in one transaction."""
    with db.transaction() as conn:
        return update(conn, changes, from_data=from_data, set_by=set_by)
