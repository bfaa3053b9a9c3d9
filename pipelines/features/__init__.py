"""The feature stage: Beam ETL from the warehouse into the Feast feature store.

Feast decorates its classes with typeguard's ``@typechecked``, which re-reads, re-parses and
recompiles the decorated module's whole source once per method at import (typeguard issue
#468): ``import feast`` cost 12 s of CPU here, 3.7 s without it, paid by every process that
imports Feast (materialize, training, each Airflow task among them). The decorator checks
the argument types of calls into Feast; newsrec's calls are fixed and tested, so this package
makes it a no-op before any of its modules imports Feast.
"""

import typeguard


def _not_instrumented(target=None, **_options):
    """``@typechecked`` and ``@typechecked(...)`` that return what they decorate."""
    return target if target is not None else _not_instrumented


typeguard.typechecked = _not_instrumented
