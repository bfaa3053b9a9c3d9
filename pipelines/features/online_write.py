"""newsrec's bulk write path into Feast's PostgreSQL online tables.

Feast's materialize turns each value into Python protobuf objects (~110 s of CPU at seed scale)
and upserts every (entity, feature) row through three indexes (~160 s of waiting on
PostgreSQL). This module writes the same rows into the same tables, which Feast's
``get_online_features`` then reads as it always does:

1. the rows to write are Feast's own: its materialization plan (offline read, TTL filter,
   latest row per entity) runs unchanged, only its output step is replaced;
2. values and entity keys are encoded per column (:mod:`pipelines.features.online_encoding`);
3. one binary ``COPY`` loads one wide row per entity into a temporary table, and PostgreSQL
   unpivots it into (entity, feature) rows;
4. the new values become visible in one switch, in one transaction:

   * **rebuild** (the batch replaces at least ``rebuild_share`` of the live rows, e.g. the
     daily user view): a fresh table gets the new rows and the live rows the batch does not
     replace (Feast's upsert keeps those), then Feast's indexes are built and the table is
     renamed over the live one;
   * **merge** (a small batch into a large table, e.g. one day of new articles): one
     ``INSERT ... ON CONFLICT`` of only the rows that changed.

   A crash before the commit (checkpoint ``online_before_switch``) leaves the previous values
   readable and no half-built table behind.
5. Feast's registry records the materialized interval, as ``FeatureStore.materialize`` does.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.core import db
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.core.faults import checkpoint
from pipelines.features import online_encoding as enc

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

log = logging.getLogger(__name__)

CHUNK_ENTITIES = 100_000  # entities per COPY chunk: bounds the encoder's temporary memory
_DTYPES = {"Int64": enc.INT64, "Float32": enc.FLOAT, "String": enc.STRING}


@dataclass
class WriteResult:
    view: str
    entities: int
    values: int
    strategy: str  # "rebuild" | "merge" | "empty"
    encode_s: float
    copy_s: float
    switch_s: float
    read_s: float = 0.0  # Feast's plan: offline read, filter, latest row per entity

    @property
    def seconds(self) -> float:
        return self.read_s + self.encode_s + self.copy_s + self.switch_s


def rebuild_share() -> float:
    """Rebuild a view's table when the batch replaces at least this share of its live rows."""
    return float(params("features").get("online", {}).get("rebuild_share", 0.5))


def _dtype(field: Any) -> str:
    name = str(field.dtype)
    if name not in _DTYPES:
        raise NewsrecError(f"the bulk online write has no encoding for {field.name}: {name}")
    return _DTYPES[name]


def latest_rows(store: FeatureStore, view: FeatureView, start: datetime, end: datetime) -> Any:
    """The Arrow table Feast's own materialize would write for ``view`` over [start, end):
    Feast's local compute plan (offline read, filter, latest row per entity) without its
    output node, which would convert the table to protobuf objects one value at a time."""
    from feast import utils
    from feast.infra.common.materialization_job import MaterializationTask
    from feast.infra.compute_engines.dag.plan import ExecutionPlan
    from feast.infra.compute_engines.local.feature_builder import LocalFeatureBuilder

    engine = store._get_provider().batch_engine  # noqa: SLF001 (Feast 0.67's local engine; pinned)
    task = MaterializationTask(
        project=store.project,
        feature_view=view,
        start_time=utils.make_tzaware(start),
        end_time=utils.make_tzaware(end),
    )
    context = engine.get_execution_context(store.registry, task)
    plan = LocalFeatureBuilder(store.registry, task, backend=engine._get_backend(context)).build()  # noqa: SLF001
    *nodes, output = plan.nodes
    if type(output).__name__ != "LocalOutputNode":
        raise NewsrecError(f"unexpected Feast materialization plan for {view.name}: ends in {output.name}")
    return ExecutionPlan(nodes).execute(context).data


def wide_copy(view: FeatureView, table: Any, start: int, stop: int, join_keys: dict[str, str]) -> bytes:
    """Binary COPY rows (one per entity) of table[start:stop]: key, event_ts, created_ts, then
    (value, value_text) per feature."""
    part = table.slice(start, stop - start)
    n = part.num_rows
    keys = enc.entity_keys({k: (part.column(k).combine_chunks(), t) for k, t in join_keys.items()})
    source = view.batch_source
    fields = [enc.copy_field(keys), enc.copy_timestamps(_micros(part.column(source.timestamp_field)), n)]
    created = source.created_timestamp_column
    fields.append(enc.copy_timestamps(_micros(part.column(created)) if created else None, n))
    for field in view.features:
        values, text = enc.encode_values(part.column(field.name).combine_chunks(), _dtype(field))
        fields += [enc.copy_field(values), enc.copy_field(text)]
    return enc.copy_rows(fields, n)


def _micros(column: Any) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count:
        raise NewsrecError("a materialized row has no event timestamp")
    return pc.cast(column, pa.timestamp("us", tz="UTC")).combine_chunks().cast(pa.int64()).to_numpy()


def write_view(store: FeatureStore, view: FeatureView, table: Any) -> WriteResult:
    """Write Feast's rows for one view into its online table and switch them in at once."""
    from feast.infra.online_stores.helpers import compute_table_id
    from psycopg2 import sql

    config = store.config
    if getattr(config.online_store, "vector_enabled", False):
        raise NewsrecError("the bulk online write does not fill pgvector columns: vector_enabled must be off")
    if config.entity_key_serialization_version != 3:
        raise NewsrecError("the bulk online write encodes entity keys of serialization version 3 only")
    schema = config.online_store.db_schema or config.online_store.user
    live = compute_table_id(config.project, view, config.registry.enable_online_feature_view_versioning)
    join_keys = {field.name: _dtype(field) for field in view.entity_columns}
    features = [f.name for f in view.features]
    table = table.combine_chunks() if table.num_rows else table
    n = table.num_rows
    if n == 0:
        return WriteResult(view.name, 0, 0, "empty", 0.0, 0.0, 0.0)

    ident = {
        "live": sql.Identifier(schema, live),
        "stage": sql.Identifier(f"_stage_{live}"[:63]),
        "next": sql.Identifier(schema, f"{live}__next"[:63]),
    }
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (ident["live"].as_string(conn),))
        if cur.fetchone()[0] is None:
            raise NewsrecError(f"online table {schema}.{live} is missing: run `newsrec features apply`")
        cur.execute(sql.SQL("LOCK TABLE {live} IN SHARE ROW EXCLUSIVE MODE").format(**ident))
        columns = _columns(cur, schema, live)
        if "value_num" in columns:
            raise NewsrecError(f"{live} has a value_num column (openai-compatible store): not written in bulk")
        wide = [sql.SQL("entity_key bytea, event_ts timestamptz, created_ts timestamptz")]
        wide += [
            sql.SQL("{} bytea, {} text").format(sql.Identifier(f"v{i}"), sql.Identifier(f"t{i}"))
            for i in range(len(features))
        ]
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {stage} ({cols}) ON COMMIT DROP").format(cols=sql.SQL(", ").join(wide), **ident)
        )
        copy_sql = sql.SQL("COPY {stage} FROM STDIN (FORMAT binary)").format(**ident).as_string(conn)
        chunks = _CopyStream(
            wide_copy(view, table, start, min(n, start + CHUNK_ENTITIES), join_keys)
            for start in range(0, n, CHUNK_ENTITIES)
        )
        t0 = time.perf_counter()
        cur.copy_expert(copy_sql, chunks)
        encode_s, copy_s = chunks.encode_s, time.perf_counter() - t0 - chunks.encode_s
        t0 = time.perf_counter()
        unpivot = sql.SQL(
            "SELECT s.entity_key, f.feature_name, f.value, f.value_text, NULL::bytea AS vector_value, "
            "s.event_ts, s.created_ts FROM {stage} s CROSS JOIN LATERAL (VALUES {rows}) "
            "AS f(feature_name, value, value_text)"
        ).format(
            rows=sql.SQL(", ").join(
                sql.SQL("({}::text, s.{}, s.{})").format(
                    sql.Literal(name), sql.Identifier(f"v{i}"), sql.Identifier(f"t{i}")
                )
                for i, name in enumerate(features)
            ),
            **ident,
        )
        target_cols = sql.SQL(", ").join(
            map(
                sql.Identifier,
                ["entity_key", "feature_name", "value", "value_text", "vector_value", "event_ts", "created_ts"],
            )
        )
        live_rows = _live_rows(cur, ident["live"])
        strategy = "rebuild" if n * len(features) >= rebuild_share() * live_rows else "merge"
        if strategy == "rebuild":
            _rebuild(cur, schema, live, ident, unpivot, target_cols, features, columns)
        else:
            cur.execute(
                sql.SQL(
                    "INSERT INTO {live} ({cols}) {unpivot} ON CONFLICT (entity_key, feature_name) DO UPDATE SET "
                    "value = EXCLUDED.value, value_text = EXCLUDED.value_text, vector_value = EXCLUDED.vector_value, "
                    "event_ts = EXCLUDED.event_ts, created_ts = EXCLUDED.created_ts "
                    "WHERE ({live}.value, {live}.value_text, {live}.event_ts, {live}.created_ts) IS DISTINCT FROM "
                    "(EXCLUDED.value, EXCLUDED.value_text, EXCLUDED.event_ts, EXCLUDED.created_ts)"
                ).format(cols=target_cols, unpivot=unpivot, **ident)
            )
            checkpoint("online_before_switch")  # merged, not committed: the old values stay readable
        switch_s = time.perf_counter() - t0
    return WriteResult(view.name, n, n * len(features), strategy, encode_s, copy_s, switch_s)


def _rebuild(
    cur: Any,
    schema: str,
    live: str,
    ident: dict,
    unpivot: Any,
    target_cols: Any,
    features: list[str],
    columns: list[str],
) -> None:
    """Build the next table (new rows + the live rows they do not replace, as Feast's upsert
    keeps them), give it the live table's indexes and privileges, and rename it into place."""
    from psycopg2 import sql

    cur.execute(sql.SQL("CREATE TABLE {next} (LIKE {live} INCLUDING DEFAULTS)").format(**ident))
    cur.execute(sql.SQL("INSERT INTO {next} ({cols}) {unpivot}").format(cols=target_cols, unpivot=unpivot, **ident))
    all_cols = sql.SQL(", ").join(sql.SQL("l.{}").format(sql.Identifier(c)) for c in columns)
    cur.execute(
        sql.SQL(
            "INSERT INTO {next} SELECT {all} FROM {live} l WHERE l.feature_name <> ALL(%s) "
            "OR NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.entity_key = l.entity_key)"
        ).format(all=all_cols, **ident),
        (features,),
    )
    cur.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisprimary, quote_ident(c.relname) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass ORDER BY c.relname",
        (f'"{schema}"."{live}"',),
    )
    indexes = cur.fetchall()
    cur.execute(
        "SELECT quote_ident(%s) || '.' || quote_ident(%s), quote_ident(%s) || '.' || quote_ident(%s)",
        (schema, live, schema, f"{live}__next"[:63]),
    )
    live_q, next_q = cur.fetchone()
    renames = []
    for k, (name, definition, primary, name_q) in enumerate(indexes):
        temp = f"{live}__next_i{k}"[:63]
        if primary:
            cols = definition[definition.rindex("(") :]
            cur.execute(
                sql.SQL("ALTER TABLE {next} ADD CONSTRAINT {c} PRIMARY KEY ").format(c=sql.Identifier(temp), **ident)
                + sql.SQL(cols)
            )
        else:
            head = f"INDEX {name_q} ON {live_q} "
            if head not in definition:
                raise NewsrecError(f"cannot copy index {name} of {live}: {definition}")
            cur.execute(definition.replace(head, f"INDEX {sql.Identifier(temp).as_string(cur)} ON {next_q} ", 1))
        renames.append((temp, name))
    cur.execute(sql.SQL("ANALYZE {next}").format(**ident))
    cur.execute(
        "SELECT a.privilege_type, coalesce(r.rolname, 'PUBLIC'), a.is_grantable FROM pg_class c, "
        "aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
        "WHERE c.oid = %s::regclass AND a.grantee <> c.relowner",
        (f'"{schema}"."{live}"',),
    )
    grants = cur.fetchall()
    checkpoint("online_before_switch")  # built, not switched: the old table is still the live one
    cur.execute(sql.SQL("DROP TABLE {live}").format(**ident))
    cur.execute(sql.SQL("ALTER TABLE {next} RENAME TO {name}").format(name=sql.Identifier(live), **ident))
    for temp, name in renames:
        cur.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(schema, temp), sql.Identifier(name)))
    for privilege, grantee, grantable in grants:
        role = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
        option = sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL("")
        cur.execute(sql.SQL("GRANT {} ON {} TO {}{}").format(sql.SQL(privilege), ident["live"], role, option))


def _columns(cur: Any, schema: str, table: str) -> list[str]:
    cur.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum",
        (f'"{schema}"."{table}"',),
    )
    return [r[0] for r in cur.fetchall()]


def _live_rows(cur: Any, live: Any) -> int:
    """Rows of the live table: the planner's estimate when it has one (each write analyzes)."""
    from psycopg2 import sql

    cur.execute(sql.SQL("SELECT reltuples FROM pg_class WHERE oid = %s::regclass"), (live.as_string(cur),))
    estimate = float(cur.fetchone()[0])
    if estimate >= 0:
        return int(estimate)
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(live))
    return int(cur.fetchone()[0])


class _CopyStream:
    """A file-like object for psycopg2's copy_expert that encodes the next chunk when PostgreSQL
    asks for more (one chunk in memory at a time); ``encode_s`` is the time spent encoding."""

    def __init__(self, chunks: Any) -> None:
        self._parts = itertools.chain([enc.COPY_HEADER], chunks, [enc.COPY_TRAILER])
        self.encode_s = 0.0

    def read(self, size: int = -1) -> bytes:
        t0 = time.perf_counter()
        part = next(self._parts, b"")
        self.encode_s += time.perf_counter() - t0
        return part


def materialize_view(store: FeatureStore, name: str, start: datetime, end: datetime) -> WriteResult:
    """Materialize one view over [start, end) through the bulk path, then record the interval in
    Feast's registry (what ``FeatureStore.materialize`` records after each view)."""
    from feast import utils

    view = store.get_feature_view(name)
    t0 = time.perf_counter()
    table = latest_rows(store, view, start, end)
    read_s = time.perf_counter() - t0
    result = write_view(store, view, table)
    result.read_s = read_s
    store.registry.apply_materialization(view, store.project, utils.make_tzaware(start), utils.make_tzaware(end))
    log.info(
        "online %s: %d entities, %d values, %s; read %.2f s, encode %.2f s, copy %.2f s, switch %.2f s",
        name,
        result.entities,
        result.values,
        result.strategy,
        read_s,
        result.encode_s,
        result.copy_s,
        result.switch_s,
    )
    return result
