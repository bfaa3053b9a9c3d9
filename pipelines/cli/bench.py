"""``newsrec bench``: benchmarks whose results go to files (never timed unit tests)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

app = typer.Typer(help="Measure stages against what this machine can do.", no_args_is_help=True)


@app.command()
def etl(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="Day to build features for."),
    results: Path = typer.Option(Path("bench/results"), help="Folder for etl.json and etl.md."),
    runner: str = typer.Option(None, help="Beam runner for the Beam path."),
) -> None:
    """Beam feature build vs the same transform in plain pyarrow/pandas, same data."""
    from pipelines.bench.etl import run

    typer.echo(run(day.date(), results, runner).render())


@app.command("mind-import")
def mind_import(
    rows: int = typer.Option(1_000_000, min=1_000, help="Impression rows (user x article) of behaviors.tsv."),
    results: Path = typer.Option(Path("bench/results"), help="Folder for mind_import.json and mind_import.md."),
    database: str = typer.Option("{main}_mind_bench", help="The bench's own database on the same server."),
) -> None:
    """`warehouse import-mind` on a synthetic MIND folder vs COPY of as many rows, same run."""
    from pipelines.bench.mind_import import run

    typer.echo(run(results, rows, database).render())


@app.command()
def reader(
    results: Path = typer.Option(Path("bench/results"), help="Folder for reader.json and reader.md."),
    seconds: int = typer.Option(15, min=1, max=600, help="Load per case (target x connections), seconds."),
    connections: list[int] = typer.Option([4, 32], min=1, max=1024, help="Concurrent connections (repeatable)."),
    warmup: float = typer.Option(2.0, min=0, max=60, help="Unmeasured load before each case, seconds."),
    users: int = typer.Option(20_000, min=10, help="Users of the world built when nothing is live."),
    world: str = typer.Option(
        "auto", help="auto: the live batch, else build one in an empty warehouse; seed: REPLACE the warehouse."
    ),
    generator: str = typer.Option("auto", help="Load generator: auto (wrk if installed), wrk or python."),
) -> None:
    """The REST reader vs a bare FastAPI app under load (wrk), one server at a time."""
    from pipelines.bench.reader import run

    typer.echo(run(results, seconds, users, connections, warmup, generator, world, say=typer.echo).render())


@app.command()
def soak(
    results: Path = typer.Option(Path("bench/results"), help="Folder for soak.json and soak.md."),
    seconds: float = typer.Option(60, min=1, max=3600, help="How long the load runs."),
    connections: int = typer.Option(32, min=1, max=1024, help="Concurrent clients (closed loop)."),
    switches: int = typer.Option(3, min=1, max=50, help="Publish switches during the load (then one rollback)."),
    rollback: bool = typer.Option(True, help="End with a rollback to the previous batch."),
    users: int = typer.Option(20_000, min=10, help="Users of the soak's simulated warehouse."),
    database: str = typer.Option("{main}_soak", help="The soak's own database on the same server."),
    world: str = typer.Option("auto", help="auto: reuse the soak database's warehouse; seed: build a new one."),
) -> None:
    """The reader under load while batches go live: zero errors, every list complete and from one batch."""
    from pipelines.bench.soak import run

    result = run(results, seconds, connections, switches, rollback, users, database, world, say=typer.echo)
    typer.echo(result.render())
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def scoring(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="Day whose features score tomorrow."),
    results: Path = typer.Option(Path("bench/results"), help="Folder for scoring.json and scoring.md."),
    publish: bool = typer.Option(True, help="Also time the atomic publish."),
    name: str = typer.Option("scoring", help="Results file names (<name>.json, <name>.md)."),
) -> None:
    """Batch scoring of every active user per candidate row vs compiled predict of the same model."""
    from pipelines.bench.scoring import run

    typer.echo(run(day.date(), results, publish, name).render())


@app.command()
def cluster(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="Logical date of the stages."),
    workers: int = typer.Option(2, min=1, help="Worker processes of the LocalCluster started for the run."),
    threads: int = typer.Option(1, min=1, help="Threads per worker."),
    address: str = typer.Option(None, help="Use this running scheduler instead of starting a LocalCluster."),
    stage: list[str] = typer.Option(None, "--stage", help="Only these stages (features, train, score); repeatable."),
    train_days: int = typer.Option(None, min=1, help="Days trained on (default: params.yaml)."),
    results: Path = typer.Option(Path("bench/results"), help="Folder for cluster.json and cluster.md."),
) -> None:
    """Each heavy stage of one date in-process, then on a Dask cluster: wall time of both."""
    from pipelines.bench.cluster import compare

    comparison = compare(day.date(), workers, threads, address, stage or None, train_days)
    comparison.write(results)
    typer.echo(comparison.render())


@app.command()
def nightly(
    users: int = typer.Option(521_000, min=100, help="Users of the simulated world (seed scale: 521,000)."),
    articles_per_day: int = typer.Option(144_000, min=50, help="New articles a day (seed scale: 144,000)."),
    days: int = typer.Option(7, min=3, max=60, help="Days of history (>= --train-days + 3); the cycle is the last."),
    trials: int = typer.Option(0, min=0, help="Training budget: search trials (0: params.yaml's LightGBM parameters)."),
    train_days: int = typer.Option(2, min=1, help="Training budget: days trained on."),
    reader_seconds: int = typer.Option(15, min=1, max=600, help="Reader load per case, seconds."),
    profile: bool = typer.Option(False, help="Profile every stage (pyinstrument); keep the slowest one's."),
    reuse_world: bool = typer.Option(False, help="Reuse a world of the same size already in --home."),
    serial: bool = typer.Option(False, help="Run the stages one at a time (default: side by side, as the DAG does)."),
    home: Path = typer.Option(Path(".newsrec-bench"), help="The bench's own NEWSREC_HOME (own embedded database)."),
    results: Path = typer.Option(Path("bench/results"), help="Folder for nightly.{json,md,png} and the rest."),
) -> None:
    """The whole nightly cycle at seed scale, per stage, next to what this machine can do."""
    from pipelines.bench import nightly as bench_nightly
    from pipelines.bench import nightly_config, nightly_report

    cfg = nightly_config.BenchConfig(users=users, articles_per_day=articles_per_day, days=days, trials=trials,
                      train_days=train_days, reader_seconds=reader_seconds, profile=profile,
                      reuse_world=reuse_world, serial=serial)  # fmt: skip
    typer.echo(nightly_report.render(bench_nightly.run(cfg, home, results, say=typer.echo)))


@app.command("compare-nightly")
def compare_nightly(
    before: Path = typer.Argument(..., exists=True, dir_okay=False, help="nightly.json of the earlier code."),
    after: Path = typer.Argument(..., exists=True, dir_okay=False, help="nightly.json of this code, same world."),
    out: Path = typer.Option(Path("bench/results/nightly_side_by_side.md"), help="The markdown written."),
    before_label: str = typer.Option("before", help="Name of the earlier code (e.g. its commit)."),
    after_label: str = typer.Option("after", help="Name of this code."),
) -> None:
    """Two nightly bench runs of one world side by side: stage by stage speed-ups, memory, quality."""
    from pipelines.bench.nightly_compare import write

    typer.echo(write(before, after, out, before_label, after_label))


@app.command()
def counterfactual(
    bias: list[float] = typer.Option([0.5, 1.0, 2.0], "--bias", min=0, help="Position bias of a world (repeatable)."),
    loop: str = typer.Option("both", help="Closed loop: on, off or both (one world each)."),
    users: int = typer.Option(1500, min=100, help="Users of each simulated world."),
    articles: int = typer.Option(300, min=50, help="New articles a day in each world."),
    keep: bool = typer.Option(False, help="Keep the worlds' databases (<main>_cf_*) for a look afterwards."),
    results: Path = typer.Option(Path("bench/results"), help="Folder for counterfactual.json and counterfactual.md."),
) -> None:
    """Rank models by the logged and the counterfactual metric in simulated worlds; Kendall tau vs the truth."""
    from pipelines.bench.counterfactual import run

    loops = {"on": (True,), "off": (False,), "both": (False, True)}.get(loop)
    if loops is None:
        raise typer.BadParameter("choose on, off or both", param_hint="'--loop'")
    run(results, tuple(bias), loops, users, articles, keep, say=typer.echo)
    typer.echo((results / "counterfactual.md").read_text())
