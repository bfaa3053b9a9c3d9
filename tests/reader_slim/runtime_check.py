"""Run by check.sh in the slim venv before any test tool is installed: the reader's run-time
environment (requirements-reader.txt) is complete and holds none of the pipeline stack.

It imports what ``newsrec reader serve`` imports, builds the app, runs the explanation
warm-up the app starts on a pair whose model is missing (it ends "unavailable" with the
reason, before any heavy import), then loads what the first explanation (and a warm-up with
a model) loads: LightGBM, Feast's store with the project's repository configuration. It
checks that the pipeline-only libraries are not even installed. Prints one line per check;
exits non-zero on the first failure.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time

ABSENT = ("airflow", "apache_beam", "great_expectations", "evidently", "mlflow", "dvc", "optuna", "neptune")


def main() -> None:
    os.environ.setdefault("NEWSREC_HOME", tempfile.mkdtemp(prefix="nr-slim-home"))
    installed = [name for name in ABSENT if importlib.util.find_spec(name) is not None]
    assert not installed, f"the slim venv has pipeline-only libraries: {installed}"
    print(f"not installed: {', '.join(ABSENT)}")

    start = time.perf_counter()
    import pipelines.cli  # noqa: F401  (the `newsrec` entry point, every command group)
    from pipelines.reader.app import create_app

    app = create_app()
    print(f"entry point + reader app: {time.perf_counter() - start:.2f} s, {len(app.routes)} routes")

    # uvicorn picks its loop and HTTP parser by what is installed: the same as the full venv's
    # (the raw malformed-request tests depend on the parser).
    import uvicorn.loops.auto
    import uvicorn.protocols.http.auto

    uvicorn.loops.auto.auto_loop_factory()
    http = uvicorn.protocols.http.auto.AutoHTTPProtocol.__name__
    assert "uvloop" in sys.modules and http == "HttpToolsProtocol", http
    print(f"uvicorn: uvloop, {http}")

    from pipelines.reader.warmup import UNAVAILABLE, ExplanationWarmup

    warmup = ExplanationWarmup()
    warmup.load({"model_key": "0-missing", "model_version": "0", "user_id": 1, "article_id": 1, "data_date": None})
    assert (warmup.state, warmup.detail) == (UNAVAILABLE, "model 0-missing is not exported for serving"), (
        warmup.state, warmup.detail,
    )  # fmt: skip
    assert "lightgbm" not in sys.modules and "feast" not in sys.modules
    print(f"explanation warm-up without a model: {warmup.state} ({warmup.detail}), nothing heavy imported")

    start = time.perf_counter()
    import lightgbm  # noqa: F401

    import pipelines.serving.explanations  # noqa: F401
    from pipelines.features import store

    fs = store.feature_store("postgresql://newsrec_reader@/newsrec?host=/nonexistent")
    online, offline = type(fs.config.online_store).__name__, type(fs.config.offline_store).__name__
    took = time.perf_counter() - start
    print(f"explanations: lightgbm, pipelines.serving.explanations, Feast ({online}, {offline}): {took:.2f} s")


if __name__ == "__main__":
    main()
