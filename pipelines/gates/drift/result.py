"""The drift verdict as data: one :class:`ColumnDrift` per compared column and the day's
:class:`DriftResult`, whose JSON goes to ``ops.drift_results.verdict``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pipelines.core.jsonable import json_safe
from pipelines.gates.drift import windows

Kind = Literal["features", "target", "scores"]


@dataclass
class ColumnDrift:
    column: str
    kind: str  # "num" | "cat"
    method: str
    threshold: float
    score: float | None
    drifted: bool


@dataclass
class DriftResult:
    """Machine-readable drift verdict of one day against its reference days."""

    kind: Kind
    day: date | None
    reference_days: list[date]
    drifted: bool
    drift_share: float
    share_threshold: float
    columns: list[ColumnDrift]
    stats: dict[str, Any] = field(default_factory=dict)
    report_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    result_id: int | None = None
    run_id: int | None = None

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def scores(self) -> dict[str, float | None]:
        return {c.column: c.score for c in self.columns}

    def verdict(self) -> dict[str, Any]:
        """The JSON stored in ``ops.drift_results.verdict``."""
        return json_safe(
            {
                "kind": self.kind,
                "drifted": self.drifted,
                "drift_share": self.drift_share,
                "share_threshold": self.share_threshold,
                "n_columns": len(self.columns),
                "n_drifted": len(self.drifted_columns),
                "drifted_columns": self.drifted_columns,
                "columns": [asdict(c) for c in self.columns],
                "stats": self.stats,
                "warnings": self.warnings,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.verdict(),
            "day": self.day.isoformat() if self.day else None,
            "reference_days": [d.isoformat() for d in self.reference_days],
            "report_path": str(self.report_path) if self.report_path else None,
            "result_id": self.result_id,
        }

    def render(self) -> str:
        ref = windows.describe_days(self.reference_days)
        head = (
            f"drift {self.kind} {self.day} vs {ref}: {'DRIFTED' if self.drifted else 'ok'} "
            f"({len(self.drifted_columns)} of {len(self.columns)} columns drifted, share "
            f"{self.drift_share:.2f}, threshold {self.share_threshold:.2f})"
        )
        lines = [head]
        for c in sorted(self.columns, key=lambda c: -(c.score or 0.0)):
            if c.drifted:
                lines.append(f"  DRIFTED  {c.column}: {c.method} {c.score:.3f} >= {c.threshold:g}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)
