"""Training sets: logged impressions, graded by dwell, with point-in-time features from Feast.

One query group per (user, day): the slates a user saw that day. Labels grade the time spent
(the business metric), not the click: 0 = shown, not read; then one grade per dwell band. A
source without dwell (its data profile says clicks only, like MIND) is graded by the click:
0 = shown, not read, 1 = read (:func:`labels` picks the grading). The profile also decides
the matrix's features (:func:`pipelines.features.matrix.current_feature_names`).
Groups without any read teach LambdaRank nothing and are dropped; a cap on groups (seeded
sample) bounds the cost at seed scale.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db, hashing
from pipelines.core import sql as queries
from pipelines.core.config import get_settings, params
from pipelines.core.errors import NewsrecError
from pipelines.features import matrix, partitions, retrieval
from pipelines.warehouse import profile as data_profile
from pipelines.warehouse.profile import DataProfile

# Reads are folded per impression first (about one in ten impressions has one) and joined to the
# impressions as they are, without a GROUP BY of every impression row: at seed scale (10.8 M
# impressions over the training, validation and test days) the grouped form spilled to disk and
# took 35 s of PostgreSQL time against 17 s. Category and day are added by :func:`impressions`.
# The same rows as the grouped form wherever event ids are unique (a critical raw-quality check).
_IMPRESSIONS_SQL = """
SELECT i.event_id, i.user_id, i.article_id, i.event_ts AS event_timestamp, i.position,
       coalesce(r.dwell, 0)::float8 AS dwell, (r.impression_id IS NOT NULL)::int AS is_read
FROM warehouse.events i
LEFT JOIN (
    SELECT impression_id, max(dwell_seconds) FILTER (WHERE dwell_seconds > 0) AS dwell
    FROM warehouse.events
    WHERE event_type = 'read' AND impression_id IS NOT NULL
      AND event_ts >= %(start)s AND event_ts < %(end_reads)s
    GROUP BY impression_id
) r ON r.impression_id = i.event_id
WHERE i.event_type = 'impression' AND i.event_ts >= %(start)s AND i.event_ts < %(end)s
"""


@dataclass
class Split:
    """Rows of one time slice: feature matrix, labels, query group sizes, and keys."""

    rows: pd.DataFrame  # keys, labels and raw feature rows (for re-matrixing and slicing)
    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray  # sizes of consecutive query groups

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def positions(self) -> np.ndarray:
        """Logged slate positions, for position-debiased training only (never a feature);
        an impression logged without a position gets its own bucket, -1."""
        return pd.to_numeric(self.rows["position"], errors="coerce").fillna(-1).to_numpy(np.int32)


def subsample(split: Split, max_groups: int, seed: int) -> Split:
    """At most ``max_groups`` of the split's query groups (a seeded sample, kept in their order);
    the split itself when it holds no more."""
    n = split.n_groups
    if max_groups <= 0 or n <= max_groups:
        return split
    keep = np.zeros(n, dtype=bool)
    keep[np.random.default_rng(seed).choice(n, max_groups, replace=False)] = True
    rows = np.flatnonzero(np.repeat(keep, split.groups))
    return Split(split.rows.iloc[rows], split.X.iloc[rows], split.y[rows], split.groups[keep])


def grade(dwell: np.ndarray, is_read: np.ndarray, bands: list[float]) -> np.ndarray:
    """0 = not read; 1 + the number of dwell band edges the read's dwell reaches."""
    edges = np.asarray(bands, dtype=np.float64)
    grades = 1 + np.searchsorted(edges, np.asarray(dwell, dtype=np.float64), side="right")
    return np.where(np.asarray(is_read, dtype=bool), grades, 0).astype(np.int32)


def click_grade(is_read: np.ndarray) -> np.ndarray:
    """0 = not read, 1 = read: the grades of a source without dwell."""
    return np.asarray(is_read, dtype=bool).astype(np.int32)


def labels(frame: pd.DataFrame, profile: DataProfile, bands: list[float]) -> np.ndarray:
    """The labels of impression rows (``dwell``, ``is_read``): dwell grades when the source has
    dwell, click grades when it has clicks only. The one place the grading is chosen."""
    if profile.dwell:
        return grade(frame["dwell"].to_numpy(), frame["is_read"].to_numpy(), bands)
    return click_grade(frame["is_read"].to_numpy())


def impressions(first: date, last: date) -> Any:
    """Impressions of days [first, last] with their dwell and read flag, as a pyarrow Table
    (None when there are none): pandas' objects (categories, dates) are made only for the rows
    kept (:func:`sampled_impressions`). Impressions of articles missing from the catalogue are
    left out (they have no category to learn from)."""
    start = f"{first.isoformat()} 00:00:00+00"
    end = f"{(last + timedelta(days=1)).isoformat()} 00:00:00+00"
    # reads may land a little after midnight of the impression's day
    end_reads = f"{(last + timedelta(days=2)).isoformat()} 00:00:00+00"
    import pyarrow as pa

    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
        types = {"event_timestamp": pa.timestamp("ns", tz="UTC")}
        table = db.read_table(conn, _IMPRESSIONS_SQL, {"start": start, "end": end, "end_reads": end_reads}, types)
        if table is None or table.num_rows == 0:
            return None
        return _with_category_and_day(conn, table)
    finally:
        conn.close()


def _with_category_and_day(conn: Any, table: Any) -> Any:
    """``table`` with its articles' categories and the UTC day of each impression, in the column
    order the joined query returned. The categories are looked up by primary key for the
    articles shown only: joining the catalogue in the query cost PostgreSQL 7 s at seed scale,
    and a warehouse's catalogue grows by every day's articles."""
    import pyarrow as pa
    import pyarrow.compute as pc

    shown = pc.unique(table["article_id"]).to_numpy()
    literal = "{" + ",".join(map(str, shown.tolist())) + "}"
    catalogue = db.read_table(conn, queries.load("training_article_categories"), (literal,),
                              {"article_id": pa.int64(), "category": pa.string()})  # fmt: skip
    if catalogue is None:
        return None
    where = pc.index_in(table["article_id"], value_set=catalogue["article_id"])
    if where.null_count:
        known = pc.is_valid(where)
        table, where = table.filter(known), where.filter(known)
        if table.num_rows == 0:
            return None
    category = pc.take(catalogue["category"], where)
    day = pc.cast(table["event_timestamp"], pa.date32())  # the timestamps are UTC
    columns = {name: table[name] for name in table.column_names}
    columns["category"], columns["day"] = category, day
    order = ["event_id", "user_id", "article_id", "category", "event_timestamp", "position", "day", "dwell", "is_read"]
    return pa.table({name: columns[name] for name in order})


def tie_order(event_id: np.ndarray | pd.Series) -> np.ndarray:
    """A fixed pseudo-random order of impressions (a multiplicative hash of the event id).

    Rows within a query group are kept, and score ties are broken, in this order. Position
    order (and event-id order, which follows the slate) would leak the logging policy: LightGBM's
    NDCG breaks ties in row order, so with rows in position order a model whose early trees
    tie many items scored the logged, position-biased reads on top and early stopping kept
    one tree.
    """
    return hashing.tie_order(np.asarray(event_id))


def group_sample(
    user_id: np.ndarray, day: np.ndarray, is_read: np.ndarray, event_id: np.ndarray, max_groups: int | None, seed: int
) -> np.ndarray:
    """Row numbers of the (user, day) groups with at least one read, at most ``max_groups`` of
    them sampled (seeded, over the groups in (day, user) order), ordered by day, user and
    :func:`tie_order`. The sample depends on the rows only, never on the order the warehouse
    returned them in (which a query plan may change).

    The same rows, in the same order, as the sorted unique keys, ``DataFrame.sample``
    (``RandomState(seed).choice``) and a stable sort by (day, user_id, tie order) in pandas, in
    integer arrays: at seed scale that pandas path took 14 s of the training stage on 15 M rows."""
    user_code, users = pd.factorize(np.asarray(user_id), sort=True)
    day_code = pd.factorize(np.asarray(day), sort=True)[0]
    group = pd.factorize(day_code.astype(np.int64) * max(len(users), 1) + user_code, sort=True)[0]
    n_groups = int(group.max()) + 1 if len(group) else 0
    kept = np.flatnonzero(np.bincount(group, weights=np.asarray(is_read), minlength=n_groups) > 0)
    if max_groups and len(kept) > max_groups:
        kept = kept[np.random.RandomState(seed).choice(len(kept), size=max_groups, replace=False)]
    chosen = np.zeros(n_groups, dtype=bool)
    chosen[kept] = True
    rows = np.flatnonzero(chosen[group])
    order = np.lexsort((tie_order(np.asarray(event_id)[rows]), np.asarray(user_id)[rows], day_code[rows]))
    return rows[order]


def sampled_impressions(first: date, last: date, max_groups: int | None, seed: int) -> pd.DataFrame:
    """:func:`impressions` of days [first, last], only the rows :func:`group_sample` keeps
    (empty: none with a read)."""
    table = impressions(first, last)
    if table is None:
        raise NewsrecError(f"no impressions between {first} and {last}")
    columns = {c: table[c].to_numpy() for c in ("user_id", "is_read", "event_id")}
    day = table["day"].cast("int32").to_numpy()
    rows = group_sample(columns["user_id"], day, columns["is_read"], columns["event_id"], max_groups, seed)
    return table.take(rows).to_pandas()


def require_features(days: list[date]) -> None:
    """Impressions on day t read the features of t-1: those partitions must be complete."""
    missing = [d - timedelta(days=1) for d in days if partitions.read_manifest(d - timedelta(days=1)) is None]
    if missing:
        span = f"--from {min(missing)} --to {max(missing)}"
        raise NewsrecError(f"features missing for {len(missing)} day(s); run `newsrec features build {span}`")


class NotEnoughHistory(NewsrecError):
    """A new warehouse has no logged impressions in the training window yet."""


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), UTC)


def trainable_first(first: date, last: date) -> date:
    """The training window's first day: ``first``, or on a new warehouse its first impression day.

    A warehouse whose history starts inside the window (the first nights after an import) has
    no features for the days before it; the window then starts at the first day with logged
    impressions. Days with features are never skipped, so a mature warehouse is unaffected."""
    if partitions.read_manifest(first - timedelta(days=1)) is not None:
        return first
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("training_first_impression"), (_midnight(first), _midnight(last + timedelta(days=1))))
        (start,) = cur.fetchone()
    if start is None:
        raise NotEnoughHistory(
            f"not enough history to train yet: no logged impressions between {first} and {last} "
            f"(the training days before the validation day); training starts once there are"
        )
    return max(first, start.astimezone(UTC).date())


def training_window(day: date, train_days: int | None = None) -> tuple[date, date]:
    """The training days of night ``day``: D-n-1 .. D-2 (validation D-1, test D), starting later
    on a new warehouse; raises NotEnoughHistory when it has no impressions in them yet."""
    n = int(train_days or params("training").get("train_days", 5))
    last = day - timedelta(days=2)
    return trainable_first(day - timedelta(days=n + 1), last), last


def load_split(
    first: date,
    last: date,
    spec: matrix.MatrixSpec | None = None,
    max_groups: int | None = None,
    seed: int = 0,
    profile: DataProfile | None = None,
) -> tuple[Split, matrix.MatrixSpec]:
    """A split of days [first, last] with point-in-time features (Feast), labelled and
    matrixed under ``profile`` (default: the warehouse's stored profile)."""
    profile = profile or data_profile.current()
    frame = _labelled(first, last, max_groups, seed, profile)
    return _split(frame, retrieval.training_rows(frame[_ENTITY_COLUMNS]), spec, profile)


_ENTITY_COLUMNS = ["user_id", "article_id", "category", "event_timestamp"]


def _labelled(first: date, last: date, max_groups: int | None, seed: int, profile: DataProfile) -> pd.DataFrame:
    """The sampled, labelled impressions of days [first, last] (no features yet)."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    require_features(days)
    frame = sampled_impressions(first, last, max_groups, seed)
    if frame.empty:
        raise NewsrecError(f"no impressions with reads between {first} and {last}")
    frame["label"] = labels(frame, profile, params("training")["dwell_bands_s"])
    return frame


def _split(
    frame: pd.DataFrame, features: pd.DataFrame, spec: matrix.MatrixSpec | None, profile: DataProfile
) -> tuple[Split, matrix.MatrixSpec]:
    """A labelled frame and its feature rows (same index) as a split; fits ``spec`` when None."""
    # the columns side by side without copying them (a concat of drops copied all twice: 5.5 s at seed scale)
    columns = {c: frame[c] for c in frame.columns if c != "event_timestamp"}
    columns.update((c, features[c]) for c in features.columns if c not in ("user_id", "article_id", "category"))
    rows = pd.DataFrame(columns, copy=False)
    spec = spec or matrix.fit_spec(rows, profile)
    X = matrix.to_matrix(rows, spec)
    groups = rows.groupby(["day", "user_id"], sort=False).size().to_numpy()
    return Split(rows, X, rows["label"].to_numpy(np.int32), groups), spec


def snapshot(split: Split, path: Path) -> str:
    """Write the training rows (keys, labels, positions, matrix) and return their md5, as DVC hashes files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = pd.concat(
        [split.rows[["event_id", "user_id", "article_id", "day", "label"]].reset_index(drop=True),
         pd.DataFrame({"position": split.positions}),  # the debiased objective trains on it (never a feature)
         split.X.reset_index(drop=True)],
        axis=1,
    )  # fmt: skip
    data["day"] = data["day"].astype(str)
    partitions.write_parquet_atomic(data, path)
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_dir() -> Path:
    return get_settings().home / "datasets"


@dataclass
class Splits:
    train: Split
    valid: Split
    test: Split
    spec: Any
    window: tuple[date, date]
    profile: DataProfile = data_profile.FULL  # the data profile the splits were labelled under


def load_splits(
    day: date,
    train_days: int | None = None,
    spec: Any = None,
    first: date | None = None,
    profile: DataProfile | None = None,
) -> Splits:
    """Train on ``first`` (default: D-n-1) .. D-2, validate on D-1, test on D; a given ``spec``
    (a warm start's champion signature) keeps the champion's vocabularies. Labels and features
    follow ``profile`` (default: the warehouse's stored profile)."""
    cfg = params("training")
    profile = profile or data_profile.current()
    n = int(train_days or cfg.get("train_days", 5))
    seed = int(cfg.get("seed", 13))
    if n < 1:
        raise NewsrecError("train_days must be at least 1")
    if first is None:
        first, last = training_window(day, n)
    else:
        last = day - timedelta(days=2)
    valid_day = day - timedelta(days=1)
    reads = [(first, last, cfg.get("max_train_groups")), (valid_day, valid_day, cfg.get("max_eval_groups")),
             (day, day, cfg.get("max_eval_groups"))]  # fmt: skip
    # Side by side: each read is mostly PostgreSQL's query and arrow's parse, both outside the GIL
    # (seed scale, 2 cores: load_splits 73 s with the reads one after the other, 68 s side by side)
    with ThreadPoolExecutor(len(reads)) as pool:
        frames = list(pool.map(lambda r: _labelled(r[0], r[1], r[2], seed, profile), reads))
    # One point-in-time join for the three splits: each Feast retrieval pays a fixed cost
    # (~1 s on a small world) and reads the views' files again.
    features = retrieval.training_rows(pd.concat([f[_ENTITY_COLUMNS] for f in frames], ignore_index=True))
    bounds = np.cumsum([0, *(len(f) for f in frames)])
    # views, not copies (5 s at seed scale): the splits keep the joined columns alive together anyway
    parts = [features.iloc[lo:hi].set_axis(f.index, copy=False)
             for f, lo, hi in zip(frames, bounds[:-1], bounds[1:], strict=True)]  # fmt: skip
    # Each input is dropped once its split holds it (the splits' rows are views of the joined
    # columns, no second copy): at seed scale (4.9 M rows) this peaked at 4.1 GiB, 5.5 GiB with
    # copied slices and a concat per split, 7.0 GiB with every input kept to the end.
    del features
    out: list[Split] = []
    for i in range(3):
        frame, part = frames[i], parts[i]
        frames[i] = parts[i] = None  # type: ignore[call-overload]
        split, spec = _split(frame, part, spec, profile)
        del frame, part
        out.append(split)
    release_freed_memory()
    train, valid, test = out
    return Splits(train, valid, test, spec, (first, last), profile)


def release_freed_memory() -> None:
    """Give the heap pages that freed frames left behind back to the system (glibc keeps them
    for the process otherwise: the training stage's RSS stayed 3.8 GiB above its 2.8 GiB of
    splits), so that the stages running beside training can use them."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
