"""``newsrec serve``: the published recommendation batches (status, rollback)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Published recommendation batches: status and rollback.", no_args_is_help=True)


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
