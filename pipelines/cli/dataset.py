"""``newsrec dataset``: the training path as files (the stages of dvc.yaml)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Export, fit and evaluate the training data as files (DVC stages).", no_args_is_help=True)


@app.command()
def export(
    day: str = typer.Option("champion", "--date", help="YYYY-MM-DD, or 'champion' for the champion's date."),
    out: Path = typer.Option(Path("data/training"), help="Output folder."),
) -> None:
    """Write train/valid/test slices with point-in-time features (the training snapshot)."""
    from pipelines.model import dvc_files as files

    meta = files.export(files.resolve_date(day), out)
    typer.echo(f"exported {meta['logical_date']} (window {meta['data_window']}), train md5 {meta['train_md5']}")


@app.command()
def fit(
    data: Path = typer.Option(Path("data/training"), help="Folder written by export."),
    out: Path = typer.Option(Path("models/ranker.txt"), help="LightGBM model file."),
    params_from: str = typer.Option("champion", help="Registered version/alias to take parameters from, or 'params'."),
) -> None:
    """Retrain LightGBM deterministically on the exported slices."""
    from pipelines.model import dvc_files as files

    result = files.fit(data, out, params_from)
    typer.echo(
        f"wrote {out} ({result['trees']} trees, stopped on {result['stopped_on']}; "
        f"parameters from {result['params_from']})"
    )


@app.command()
def evaluate(
    data: Path = typer.Option(Path("data/training"), help="Folder written by export."),
    model: Path = typer.Option(Path("models/ranker.txt"), help="LightGBM model file."),
    metrics: Path = typer.Option(Path("metrics/evaluate.json"), help="Metrics file (DVC metrics)."),
    slices: Path = typer.Option(Path("plots/ndcg_by_region.csv"), help="Per-slice table (DVC plots)."),
) -> None:
    """Metrics of the fitted model on the test slice."""
    from pipelines.model import dvc_files as files

    result = files.evaluate(data, model, metrics, slices)
    typer.echo(f"NDCG@10 {result['model']['ndcg@10']:.4f} (recency {result['recency']['ndcg@10']:.4f})")
