"""The Evidently wrapper: one data-drift report over two frames, read back as per-column
verdicts and the share of drifted columns. Evidently is imported only when a report runs.

Each column's statistic and figures are computed once. Evidently's ``DataDriftPreset`` runs
the same per-column test three times (its ``DriftedColumnsCount``, one ``ValueDrift`` per
column, then the legacy ``DataDriftTable`` it renders) and draws each column's plots twice
(inside every ``ValueDrift`` calculation, then in the table), keeping only the table's. The
report here is one container (:class:`DriftTable`) that runs the legacy ``DataDriftTable``
once through the report's context, renders the preset's two parts (the dataset drift summary
and the per-column table) from that one result, and reads the verdicts from it: the same
test function on the same data, so the same scores, thresholds, verdicts and share. What the
preset shows and this report does not: its tests panel (one "Value Drift" line per column,
which the table's "Data Drift" column already says), and each numerical column's "DATA DRIFT"
chart, the column's values against the row index: the rows compared are users (a seeded sample
of them for the feature gate) in no meaningful order, so that chart showed nothing, and drawing it
was half the report's rendering. Each column keeps its "DATA DISTRIBUTION" chart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.core.config import params
from pipelines.gates.drift.result import ColumnDrift

if TYPE_CHECKING:
    import pandas as pd


def column_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    thresholds: dict[str, float],
    share_threshold: float,
    note: str = "",
) -> tuple[list[ColumnDrift], float, Any]:
    """Per-column drift (score, method, threshold, Evidently's own drifted verdict), the share
    of drifted columns and Evidently's snapshot (for its HTML report); ``note`` (markdown, e.g.
    the sampled sizes) heads the report."""
    from evidently import DataDefinition, Dataset, Report

    p = params("drift")
    columns = [*numerical, *categorical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    container = _container()(
        columns=columns,
        num_method=p["num_method"],
        cat_method=p["cat_method"],
        threshold=float(p["column_threshold"]),
        per_column_threshold={k: v for k, v in thresholds.items() if k in columns} or None,
        drift_share=share_threshold,
        note=note,
    )
    snapshot = Report([container]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    table, _widgets = container.table_result(snapshot.context)
    out: list[ColumnDrift] = []
    for name in columns:
        drift = table.drift_by_columns[name]
        out.append(
            ColumnDrift(
                column=name,
                kind="cat" if name in categorical else "num",
                method=p["cat_method"] if name in categorical else p["num_method"],
                threshold=float(drift.stattest_threshold),
                score=float(drift.drift_score) if drift.drift_score is not None else None,
                drifted=bool(drift.drift_detected),
            )
        )
    return out, float(table.share_of_drifted_columns), snapshot


_CLASS: list[type] = []


def _container() -> type:
    """:class:`DriftTable`, defined on first use (it subclasses an Evidently class)."""
    if not _CLASS:
        _CLASS.append(_define())
    return _CLASS[0]


def _define() -> type:
    from evidently.core.container import MetricContainer
    from evidently.legacy.calculations.data_drift import get_dataset_drift
    from evidently.legacy.metrics import DataDriftTable, DatasetDriftMetric
    from evidently.legacy.metrics.data_drift.data_drift_table import DataDriftTableRenderer
    from evidently.legacy.metrics.data_drift.dataset_drift_metric import (
        DataDriftMetricsRenderer,
        DatasetDriftMetricResults,
    )
    from evidently.legacy.renderers.base_renderer import default_renderer
    from evidently.legacy.renderers.html_widgets import text_widget

    class UnorderedDriftTable(DataDriftTable):
        """The legacy table for rows in no order: no values-against-row-index chart."""

        class Config:
            type_alias = "newsrec:metric:UnorderedDriftTable"

        def calculate(self, data: Any) -> Any:
            result = super().calculate(data)
            for column in result.drift_by_columns.values():
                object.__setattr__(column, "scatter", None)  # the renderer draws "DATA DRIFT" from it
            return result

    @default_renderer(wrap_type=UnorderedDriftTable)
    class _UnorderedDriftTableRenderer(DataDriftTableRenderer):
        pass

    class DriftTable(MetricContainer):
        """The data-drift preset's report (dataset drift summary, then the per-column table)
        with each column's test and figures computed once: no metric of the new API, the
        legacy table run once through the context (which caches it by fingerprint)."""

        columns: list[str]
        num_method: str
        cat_method: str
        threshold: float
        per_column_threshold: dict[str, float] | None = None
        drift_share: float
        note: str = ""

        def __init__(self, **data: Any) -> None:
            super().__init__(include_tests=False, **data)

        def generate_metrics(self, context: Any) -> list:
            return []

        def _table(self) -> Any:
            return UnorderedDriftTable(
                columns=self.columns,
                num_stattest=self.num_method,
                cat_stattest=self.cat_method,
                stattest_threshold=self.threshold,
                per_column_stattest_threshold=self.per_column_threshold,
            )

        def table_result(self, context: Any) -> tuple[Any, list]:
            """The legacy table's result and widgets (computed and rendered on first call)."""
            return context.get_legacy_metric(self._table(), None, None)

        def render(self, context: Any, child_widgets: Any = None) -> list:
            table, table_widgets = self.table_result(context)
            dataset = get_dataset_drift(table.drift_by_columns, self.drift_share)
            # The preset's summary is the legacy DatasetDriftMetric's widgets; that metric would
            # run every column's test again, so its renderer draws this table's counts instead.
            summary = DatasetDriftMetric(columns=self.columns, drift_share=self.drift_share)
            result = DatasetDriftMetricResults(
                drift_share=self.drift_share,
                number_of_columns=table.number_of_columns,
                number_of_drifted_columns=dataset.number_of_drifted_columns,
                share_of_drifted_columns=dataset.dataset_drift_score,
                dataset_drift=dataset.dataset_drift,
            )
            object.__setattr__(summary, "get_result", lambda: result)
            head = [text_widget(title="Rows compared", text=self.note)] if self.note else []
            return [*head, *DataDriftMetricsRenderer().render_html(summary), *table_widgets]

    return DriftTable
