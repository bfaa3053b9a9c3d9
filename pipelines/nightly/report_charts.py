"""The nightly report's charts: the last nights up to D, as SVG files next to the report.

Each chart is one series per name (stage, model, drift kind, experiment arm) over every night of
the window; a night without a record is a gap in its line, never a zero, and every point carries
a marker so that a series seen on one night only still shows. matplotlib is imported only when
the charts are drawn (the CLI's help and the reader never pay for it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from pipelines.core import sql as queries

NIGHTS = 30  # the window: the 30 nights up to and including D

NDCG_NOTE = (
    "NDCG@10 on the holdout of each night: the trained model's from its train run, logged and "
    "unbiased (IPS with the day's estimated position propensity, where positions are known; the "
    "estimate the promotion gate decides on), and the champion's (logged) from the retrain checker. "
    "The logged labels follow the lists the champion served (position bias), so only the IPS line "
    "compares models fairly; the two are on different scales."
)


@dataclass
class Chart:
    name: str  # file stem under charts/
    title: str
    ylabel: str
    series: dict[str, dict[date, float]] = field(default_factory=dict)
    note: str = ""
    percent: bool = False  # values are shares in [0, 1], drawn as percentages
    from_zero: bool = True  # the y axis starts at 0 (not for NDCG, whose changes are small)
    path: Path | None = None  # set once written


def window(day: date) -> list[date]:
    """The nights of the charts, oldest first."""
    return [day - timedelta(days=n) for n in range(NIGHTS - 1, -1, -1)]


def _series(cur, name: str, day: date) -> dict[str, dict[date, float]]:
    cur.execute(queries.load(name), {"start": window(day)[0], "day": day})
    out: dict[str, dict[date, float]] = {}
    for night, label, value in cur.fetchall():
        if value is not None:
            out.setdefault(str(label), {})[night] = float(value)
    return out


def collect(cur, day: date) -> list[Chart]:
    """The charts' data from the ``ops`` records of the window (nothing is drawn here)."""
    return [
        Chart("stage_seconds", "Stage seconds by night", "seconds",
              _series(cur, "report_history_stage_seconds", day),
              "Wall-clock seconds of the latest run of each stage of each night."),
        Chart("ndcg", "NDCG@10 (logged and unbiased) by night", "NDCG@10",
              _series(cur, "report_history_ndcg", day), NDCG_NOTE, from_zero=False),
        Chart("drift_share", "Drift share by night", "share of columns drifted",
              _series(cur, "report_history_drift", day),
              "Share of columns whose drift score crossed its threshold (latest verdict of each night).",
              percent=True),
        Chart("dwell_per_user", "Dwell per active user by arm and night", "seconds per user",
              _series(cur, "report_history_business", day),
              "Business metric: dwell from recommended impressions per user shown their list, all regions."),
    ]  # fmt: skip


def _gid(label: str) -> str:
    return "series-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")


def write(charts: list[Chart], folder: Path, day: date) -> list[Chart]:
    """Draw every chart that has data as ``folder/charts/<name>.svg``; each line's SVG group is
    ``series-<label>``. Returns the charts, with ``path`` set on those written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    nights = window(day)
    xs = [datetime.combine(n, time()) for n in nights]  # datetimes: the half-day margins below need them
    out_dir = folder / "charts"
    out_dir.mkdir(parents=True, exist_ok=True)
    for chart in charts:
        target = out_dir / f"{chart.name}.svg"
        if not chart.series:
            target.unlink(missing_ok=True)  # a re-run with no data leaves no stale chart behind
            continue
        fig = Figure(figsize=(8, 3.2), layout="constrained")
        ax = fig.add_subplot()
        scale = 100.0 if chart.percent else 1.0
        for label, points in sorted(chart.series.items()):
            ys = [points[n] * scale if n in points else float("nan") for n in nights]  # NaN: a gap
            (line,) = ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.4, label=label)
            line.set_gid(_gid(label))
        ax.set_title(chart.title, loc="left", fontsize=11)
        ax.set_ylabel(chart.ylabel, fontsize=9)
        ax.set_xlim(xs[0] - timedelta(hours=12), xs[-1] + timedelta(hours=12))
        ax.set_xticks(xs[::-5])  # every fifth night, D labelled
        ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
        if chart.from_zero:
            ax.set_ylim(bottom=0, top=105 if chart.percent else None)
        if chart.percent:
            ax.yaxis.set_major_formatter(PercentFormatter(100.0, decimals=0))
        ax.grid(True, color="#e4e7eb", linewidth=0.8)
        ax.tick_params(labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.savefig(target, format="svg", metadata={"Date": None})  # no timestamp: re-runs diff clean
        chart.path = target
    return charts
