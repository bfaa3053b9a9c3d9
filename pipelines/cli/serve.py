"""``newsrec serve``: scoring and the published recommendation batches (status, rollback, export)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import typer

app = typer.Typer(
    help="Batch scoring and the published recommendation batches: score, status, rollback, export.",
    no_args_is_help=True,
)


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"


@app.command()
def score(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="Logical date whose features rank."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Score and report, publish nothing."),
    dask_address: str = typer.Option(
        None, "--dask-address", help="Score on this Dask scheduler (default: NEWSREC_DASK_ADDRESS; unset: here)."
    ),
) -> None:
    """Score every active user with the champion (and a running experiment's arms), then
    publish the batch atomically."""
    from pipelines.serving.batch import score_and_publish

    summary = score_and_publish(day.date(), dry_run=dry_run, dask_address=dask_address)
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command()
def status(limit: int = typer.Option(10, min=1, max=1000, help="How many recent batches to list.")) -> None:
    """Show the live batch and the most recent batches."""
    from pipelines.serving.publish import status as read_status

    st = read_status(limit)
    if st.live_batch_id is None:
        typer.echo("live batch: none (nothing published yet)")
    else:
        typer.echo(f"live batch: {st.live_batch_id} (switched {st.switched_at:%Y-%m-%d %H:%M:%S %Z})")
    if not st.batches:
        return
    typer.echo(f"{'':2}{'batch':>7}  {'date':<10}  {'status':<8}  {'users':>9}  {'rows':>11}  {'created':<19}  model")
    for b in st.batches:
        mark = "* " if b.live else "  "
        users = f"{b.n_users:,}" if b.n_users is not None else "-"
        rows = f"{b.n_rows:,}" if b.n_rows is not None else "-"
        typer.echo(
            f"{mark}{b.batch_id:>7}  {b.data_date.isoformat():<10}  {b.status:<8}  {users:>9}  {rows:>11}  "
            f"{b.created_at:%Y-%m-%d %H:%M:%S}  {b.model_version}"
        )


@app.command()
def rollback(
    to: int = typer.Option(None, "--to", min=1, help="Make this complete batch live (default: the previous one)."),
) -> None:
    """Point the live pointer back one batch (or to --to BATCH). Instant; no data is copied."""
    from pipelines.serving.publish import rollback as run

    live = run(to)
    typer.echo(f"live batch is now {live}")


@app.command()
def export(
    output: Path = typer.Option(..., "--output", "-o", help="File to write; replaced only once complete."),
    fmt: ExportFormat = typer.Option(
        ExportFormat.jsonl, "--format", help="jsonl: one user a line, as the reader's export; parquet: one row a rank."
    ),
    batch_id: int = typer.Option(None, "--batch-id", min=1, help="A kept complete batch (default: the live one)."),
) -> None:
    """Write a whole batch to one file for bulk consumers (e.g. the e-mail sender)."""
    from pipelines.serving.export import export_batch

    r = export_batch(output, fmt.value, batch_id)
    which = "live batch" if r.live else "batch"
    typer.echo(
        f"{which} {r.batch_id} (model {r.model_version}): {r.users:,} users, {r.rows:,} rows "
        f"-> {r.path} ({fmt.value}, {r.size_bytes / 1e6:,.1f} MB, {r.seconds} s)"
    )
