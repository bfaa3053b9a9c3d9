"""Drift gates with Evidently: features, labels (target) and model scores of day D against
reference days.

``check_drift(day, reference_days)`` compares the model-relevant user features of D with those
of the reference days (the 7 days before D by default; the retrain checker passes the
champion's training window). ``check_target_drift`` does the same for the labels (click and
dwell of D's impressions), and ``score_drift`` / ``check_score_drift`` take two arrays of model
scores (wired in once batch scoring exists).

Both sides are sampled (``drift.sample_rows``, seeded; the feature gate draws the rows before
it builds them, so a seed-scale day never becomes a whole frame) and compared with distance
methods (normed Wasserstein for numbers, Jensen-Shannon for categories): p-value tests call
almost everything drifted at large n. The stored stats and the report's first line give the
sizes before and after sampling. A column drifted when its distance reaches its threshold; the
day drifted when the share of drifted columns reaches ``share_threshold``. The verdict goes
to ``ops.drift_results`` as JSON and an HTML report to ``$NEWSREC_HOME/reports/drift/<day>/``.
Evidently is imported only when a check runs.

One module per concern, imported one way (result <- evidently_report, store <- compare <-
features, target, scores):

- ``windows``: reference windows and which of their days have data;
- ``result``: ``ColumnDrift`` and ``DriftResult``, the verdict as data;
- ``evidently_report``: the Evidently wrapper (each column's test and figures once);
- ``store``: the verdict into ``ops.drift_results``;
- ``compare``: sampling and the comparison every gate shares;
- ``features``, ``target``, ``scores``: the three gates.
"""

from pipelines.gates.drift.features import CATEGORY_SHARE, USER_CATEGORICAL, USER_NUMERIC, check_drift, feature_frame
from pipelines.gates.drift.result import ColumnDrift, DriftResult, Kind
from pipelines.gates.drift.scores import check_score_drift, score_drift
from pipelines.gates.drift.target import TARGET_COLUMNS, check_target_drift, label_stats
from pipelines.gates.drift.windows import default_reference_days, reference_range

__all__ = [
    "CATEGORY_SHARE",
    "TARGET_COLUMNS",
    "USER_CATEGORICAL",
    "USER_NUMERIC",
    "ColumnDrift",
    "DriftResult",
    "Kind",
    "check_drift",
    "check_score_drift",
    "check_target_drift",
    "default_reference_days",
    "feature_frame",
    "label_stats",
    "reference_range",
    "score_drift",
]
