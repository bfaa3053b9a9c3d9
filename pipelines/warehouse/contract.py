"""The warehouse contract: the tables and columns the pipeline reads, required and optional.

Derived from the SQL that reads ``warehouse.*`` (the feature ETL, the trainer's dataset, the
quality gate's extract, drift, candidates, publishing, the business metric). Every listed
column must exist, because the SQL names it (``newsrec db migrate`` creates them all); a
*required* one must also be filled, an *optional* one may be NULL or one placeholder value
for every row, and the profile part it carries says which stages then switch off.

``newsrec warehouse check`` validates a warehouse against :data:`CONTRACT`, and docs/data.md
shows :func:`markdown_tables` (a test keeps the two equal), so docs and check cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.warehouse import profile as data_profile


@dataclass(frozen=True)
class Column:
    table: str  # in the warehouse schema
    name: str
    required: bool
    part: str | None  # the profile part its values carry (optional columns)
    why: str  # what reads it, in a few words


def _cols(table: str, required: bool, part: str | None, why: str, *names: str) -> list[Column]:
    return [Column(table, n, required, part, why) for n in names]


CONTRACT: tuple[Column, ...] = (
    *_cols("events", True, None, "keys of every event: the ETL, the trainer, the gates",
           "event_id", "user_id", "article_id", "event_type", "event_ts"),
    Column("events", "impression_id", True, None, "links a read (click) to its impression: the labels"),
    Column("events", "dwell_seconds", False, "dwell", "dwell features, dwell-graded labels, the dwell checks"),
    Column("events", "position", False, "positions_known", "the position-debiased objective"),
    Column("events", "surface", False, "surfaces", "which surface showed the event"),
    *_cols("events", False, None, "the closed loop: set on impressions of newsrec's own lists, NULL on loaded data",
           "batch_id", "arm", "model_version"),
    *_cols("articles", True, None, "candidates, the category features and cap, the lists shown",
           "article_id", "publication_id", "category", "title", "url"),
    Column("articles", "published_at", False, "publish_times", "candidate window, age feature, the article band"),
    *_cols("users", True, None, "the users served on D and their user features", "user_id", "signup_date"),
    Column("users", "region", False, "regions", "region features, regional fallback lists"),
    Column("users", "plan", False, None, "the trial feature (one value for all is fine)"),
    Column("users", "declared_interests", False, None, "cold-start candidates (empty arrays are fine)"),
    Column("publications", "publication_id", True, None, "the articles' publisher"),
    *_cols("publications", False, "publications", "trust and flag features, the misinformation filter, display",
           "trust_score", "misinformation_flag", "name"),
)  # fmt: skip
TABLES: tuple[str, ...] = ("events", "articles", "users", "publications")
# Rows a night needs (the query's columns), and why.
REQUIRED_DATA: dict[str, str] = {
    "users": "no users in warehouse.users (nobody to recommend to)",
    "articles": "no articles in warehouse.articles (nothing to recommend)",
    "impressions": "no impressions in warehouse.events (the trainer learns from impressions)",
    "clicks": "no reads linked to an impression (impression_id) in warehouse.events (no click labels)",
}


@dataclass
class CheckReport:
    """What ``newsrec warehouse check`` found: one line per missing required part, the inferred profile."""

    missing: list[str]
    inferred: data_profile.DataProfile | None
    stored: data_profile.DataProfile
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def render(self) -> str:
        verdict = "meets the contract" if self.ok else f"FAILS the contract ({len(self.missing)} missing)"
        lines = [f"warehouse {verdict}"]
        lines += [f"  MISSING {m}" for m in self.missing]
        lines += [f"  note: {n}" for n in self.notes]
        if self.inferred is not None:
            lines.append(self.inferred.render("Inferred profile"))
            differs = [p for p in data_profile.PARTS if getattr(self.inferred, p) != getattr(self.stored, p)]
            # the data shows positions, not that they are the display order: only the source can say
            unproven = [p for p in differs if p == "positions_known" and not self.stored.positions_known]
            differs = [p for p in differs if p not in unproven]
            if differs:
                lines.append(
                    f"  the stored profile ({self.stored.source}) differs on: {', '.join(differs)}"
                    " (store the inferred one: newsrec warehouse profile --infer)"
                )
            if unproven:
                lines.append(
                    "  positions_known: the events carry positions, but the data cannot show that they are the "
                    "display order; if the source documents it: newsrec warehouse profile --positions known"
                )
        return "\n".join(lines)


def check(conn: Any) -> CheckReport:
    """Validate the warehouse behind ``conn`` against :data:`CONTRACT`; infer its profile."""
    columns = data_profile.warehouse_columns(conn)
    tables = {t for t, _ in columns}
    missing: list[str] = []
    for table in TABLES:
        if table not in tables:
            missing.append(f"table warehouse.{table} (required; `newsrec db migrate` creates it)")
    for col in CONTRACT:
        if col.table in tables and (col.table, col.name) not in columns:
            kind = "required" if col.required else "may be empty, but the SQL reads it"
            missing.append(f"column warehouse.{col.table}.{col.name} ({kind}: {col.why})")
    notes: list[str] = []
    if not missing:
        with conn.cursor() as cur:
            cur.execute(queries.load("warehouse_required_data"))
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        missing += [REQUIRED_DATA[name] for name, present in zip(names, row, strict=True) if not present]
    else:
        notes.append("rows are not checked until the tables and columns are there")
    stored = data_profile.load(conn)
    inferred = data_profile.infer(conn, source=stored.source if stored.stored else None, columns=columns)
    return CheckReport(missing, inferred, stored, notes)


def check_warehouse() -> CheckReport:
    """:func:`check` on the configured warehouse (read only)."""
    with db.transaction() as conn:
        return check(conn)


def markdown_tables() -> str:
    """The contract and the profile parts as Markdown tables (docs/data.md holds exactly this)."""
    lines = ["| table | column | required | profile part | read for |", "|---|---|---|---|---|"]
    for c in CONTRACT:
        lines.append(
            f"| warehouse.{c.table} | `{c.name}` | {'required' if c.required else 'optional'} | "
            f"{c.part or ''} | {c.why} |"
        )
    lines += ["", "| profile part | means | inferred absent when | switches on (not applicable without it) |"]
    lines.append("|---|---|---|---|")
    for part, (meaning, absent_when, reads) in data_profile.PARTS.items():
        lines.append(f"| `{part}` | {meaning} | {absent_when} | {reads} |")
    return "\n".join(lines)
