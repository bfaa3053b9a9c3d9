"""What this machine can do, next to the nightly stages: COPY in and out of PostgreSQL, raw
predict with the same model, the same feature transform in plain pyarrow/pandas, a bare
FastAPI endpoint (the reader benchmark). Each runs in a fresh process, after the cycle.

The driver imports this module: what a reference needs beyond the database (numpy, pandas,
the model, Beam, the reader benchmark) is imported inside its child, so that the driver
stays light (a spawned child starts with the driver's peak RSS, stages included)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.bench import child_process
from pipelines.core import db


def copy_reference(rows: int) -> dict[str, Any]:
    """COPY in and out of a scratch table shaped like the serving table (rows/s)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 10**6, rows),
            "rank": rng.integers(1, 11, rows).astype(np.int16),
            "article_id": rng.integers(0, 10**7, rows),
            "score": rng.random(rows).astype(np.float32),
            "reason": np.array(["trending in your region", "because you read politics"], dtype=object)[
                rng.integers(0, 2, rows)
            ],
        }
    )
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS public.bench_copy")
            cur.execute(
                "CREATE UNLOGGED TABLE public.bench_copy (user_id bigint, rank smallint, article_id bigint, "
                "score real, reason text)"
            )
            t0 = time.perf_counter()
            db.copy_frame(cur, "public.bench_copy", frame)
            conn.commit()
            copy_in = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = db.read_frame(conn, "SELECT * FROM public.bench_copy")
        copy_out = time.perf_counter() - t0
        with conn.cursor() as cur:
            cur.execute("DROP TABLE public.bench_copy")
        conn.commit()
    finally:
        conn.close()
    if len(back) != rows:
        raise RuntimeError(f"COPY reference read {len(back)} rows back, wrote {rows}")
    return {"rows": rows, "copy_in_rows_per_s": rows / copy_in, "copy_out_rows_per_s": rows / copy_out}


def predict_reference(rows: int) -> dict[str, Any]:
    """Raw predict rows/s of the champion on a matrix of its width: LightGBM's own and compiled."""
    import numpy as np

    from pipelines.serving import predictor, scoring

    model = scoring.load_for_scoring()
    rng = np.random.default_rng(0)
    X = rng.random((rows, len(model.spec.feature_names))) * 100
    X[rng.random(X.shape) < 0.05] = np.nan
    X32 = X.astype(np.float32)
    t0 = time.perf_counter()
    model.booster.predict(X32, num_threads=predictor.threads())
    lgb_s = time.perf_counter() - t0
    compiled = predictor.Predictor(model, "lleaves")
    compiled(X[:1000])
    t0 = time.perf_counter()
    compiled(X)
    lleaves_s = time.perf_counter() - t0
    return {
        "rows": rows,
        "model_version": model.version,
        "trees": model.booster.num_trees(),
        "lightgbm_rows_per_s": rows / lgb_s,
        "lleaves_rows_per_s": rows / lleaves_s,
    }


def etl_reference(day: str, results_dir: str) -> dict[str, Any]:
    from pipelines.bench import etl  # Beam

    return etl.run(date.fromisoformat(day), Path(results_dir)).to_dict()


def reader_reference(results_dir: str, seconds: int) -> dict[str, Any]:
    from pipelines.bench import reader  # pandas, the world builder

    return reader.run(Path(results_dir), seconds, 20_000, [4, 32], 2.0, "auto", "auto", say=print).to_dict()


def measure(day: str, results_dir: Path, reader_seconds: int, scored: dict[str, Any]) -> dict[str, Any]:
    """Every reference, sized after what the night's scoring and publish handled."""
    refs: dict[str, Any] = {}
    refs["copy"], _ = child_process.run_in_child(copy_reference, max(100_000, int(scored.get("rows") or 0)))
    refs["predict"], _ = child_process.run_in_child(
        predict_reference, min(2_000_000, max(100_000, int(scored.get("candidates") or 0)))
    )
    refs["etl"], _ = child_process.run_in_child(etl_reference, day, str(results_dir))
    refs["reader"], _ = child_process.run_in_child(reader_reference, str(results_dir), reader_seconds)
    return {k: v["out"] for k, v in refs.items()}
