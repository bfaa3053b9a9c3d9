"""A digest of a batch's personal lists: equal digests mean the same users, ranks, articles,
float32 scores, reasons and model versions (row order and partitioning do not matter), so two
runs of a day, or two scoring implementations, can be compared by one string."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

COLUMNS = ("user_id", "rank", "article_id", "score", "reason", "model_version")


def list_digest(recommendations: pd.DataFrame) -> str | None:
    """sha256 over the lists in (user, rank) order; None for no lists."""
    if recommendations.empty:
        return None
    frame = recommendations
    order = np.lexsort((frame["rank"].to_numpy(np.int64), frame["user_id"].to_numpy(np.int64)))
    h = hashlib.sha256()
    for name in COLUMNS:
        if name not in frame.columns:
            h.update(f"{name}:absent".encode())
            continue
        values = frame[name].to_numpy()[order]
        if name == "score":
            h.update(values.astype(np.float32).view(np.uint32).tobytes())
        elif values.dtype == object:
            codes, uniques = pd.factorize(values, use_na_sentinel=False)
            h.update(codes.astype(np.int64).tobytes())
            h.update("\x1f".join(map(str, uniques)).encode())
        else:
            h.update(values.astype(np.int64).tobytes())
    return h.hexdigest()[:16]
