"""Feast data sources: the Parquet partitions of each view (a glob, as DuckDB needs)."""

from pathlib import Path

from feast import FileSource
from feast.data_format import ParquetFormat

from pipelines.features.catalog import TIMESTAMP, VIEWS


def sources(features_dir: Path) -> dict[str, FileSource]:
    return {
        view: FileSource(
            name=f"{view}_source",
            path=str(features_dir / view / "*.parquet"),
            file_format=ParquetFormat(),
            timestamp_field=TIMESTAMP,
        )
        for view in VIEWS
    }
