"""Quality gates: Great Expectations suites on the raw extract of a day and on its features.

``check_quality(day, stage)`` is what the DAG, the CLI and the tests call. Suites are defined
in code (:mod:`pipelines.gates.quality.suites`) and versioned; every expectation carries a severity,
and only a failed *critical* expectation fails the gate. Checks the warehouse's data profile rules
out are *not applicable* (neither passed nor failed), and band checks without enough history only
warn (:mod:`pipelines.gates.quality.applicability`). Results go to ``ops.quality_results``
and ``ops.quality_checks``; browsable Data Docs go to ``$NEWSREC_HOME/reports/quality/<day>``.
Great Expectations is imported only when a gate runs (it takes ~4 s to import), in
:mod:`pipelines.gates.quality.validation` (what each check costs, and why, is told there).
"""

from pipelines.gates.quality.gate import GateResult, check_features, check_quality, check_raw

__all__ = ["GateResult", "check_features", "check_quality", "check_raw"]
