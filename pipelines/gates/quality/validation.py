"""Great Expectations on the frames of one stage: one validation per asset, then the day's Data Docs.

Every check still sees every row (they are all row checks: nulls, uniqueness, ranges, sets,
or table checks: columns, row count), so nothing is sampled. What costs per row is kept on
GE's vectorized paths, and the answers are the ones GE gave before:

- Frames are validated in dtypes GE's pandas engine handles fast, with the same values
  (float32 widened to float64, text of few values as categoricals; feature partitions are read
  straight into them): :mod:`pipelines.gates.quality.dtypes` says why.
- GE runs under pandas copy-on-write (:func:`copy_on_write`). For every metric of every column
  check, GE's pandas engine selects the domain's rows from the whole frame (``df[df[col].notnull()]``);
  on a column without nulls pandas answers with a full copy of the frame, under copy-on-write
  with a lazy one that shares the data. GE writes to no frame it selected, so the values and
  the answers are the same; a seed-scale features stage spent about half of its validation
  copying frames that way (the 15 columns of ``user_activity`` once per check).
- GE is not handed the example columns. With them its pandas engine builds one dict per
  unexpected row, in Python, before it keeps the first few; a *passing* check with ``mostly``
  on a ratio column that is 30% NaN walked 1.5 M rows that way (~4 min under a profiler).
  Without them GE returns the labels of the first unexpected rows, and :func:`_with_examples`
  builds the same dicts GE built (the checked columns, then the example columns) for those
  rows only, before the result is stored: stored results, outcomes and pages are unchanged.

What costs per stage, whatever the data: each asset's suite runs through GE's Validator and
its result is stored directly (checkpoints had no actions, and their add_or_update and
freshness checks of suites and definitions in a fresh context cost more than validating a
small day), and every Data Docs build of the process shares compiled Jinja templates
(:mod:`pipelines.gates.quality.docs_views`). Great Expectations is imported only here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core.config import get_settings
from pipelines.gates.quality import suites
from pipelines.gates.quality.dtypes import cheap_dtypes
from pipelines.gates.quality.extracts import INDEX_COLUMNS

_VIEWS = "pipelines.gates.quality.docs_views"


def context(site_dir: Path) -> Any:
    """An ephemeral GE context whose Data Docs site and validation results live in ``site_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults()
    defaults.stores[defaults.validation_results_store_name]["store_backend"] = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": str(site_dir / ".results"),
    }
    page_view = {"module_name": _VIEWS, "class_name": "SharedPageView"}
    config = DataContextConfig(
        store_backend_defaults=defaults,
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
        data_docs_sites={
            "quality": {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "view": {"module_name": _VIEWS, "class_name": "SharedIndexPageView"},
                },
                "site_section_builders": {
                    "expectations": {"view": page_view},
                    "validations": {"view": page_view},
                    "profiling": {"view": page_view},
                },
            }
        },
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def copy_on_write() -> Any:
    """The pandas option GE validates under (a context manager)."""
    return pd.option_context("mode.copy_on_write", True)


def validate(
    stage: str,
    day: date,
    frames: dict[str, pd.DataFrame],
    checks: list[suites.Check],
    runtime: dict[str, Any],
    examples: int,
) -> tuple[list[Any], Path, dict[str, str]]:
    """Validate each frame against its suite, store the results, render the stage's pages and
    the site index once; return GE's expectation results (all assets), the site index and each
    asset's page."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.validator.v1_validator import Validator

    site_dir = get_settings().reports_dir / "quality" / day.isoformat()
    site_dir.mkdir(parents=True, exist_ok=True)
    ctx = context(site_dir)
    source = ctx.data_sources.add_pandas(name="newsrec")
    run_id = RunIdentifier(run_name=f"{stage}-{day.isoformat()}", run_time=datetime.now(UTC))
    results: list[Any] = []
    identifiers: dict[str, Any] = {}
    rendered: list[Any] = []
    for asset_name, frame in frames.items():
        batch = source.add_dataframe_asset(name=asset_name).add_batch_definition_whole_dataframe(name="day")
        suite = ctx.suites.add(suites.build_suite(stage, asset_name, checks))
        validated = cheap_dtypes(frame)
        with copy_on_write():
            validator = Validator(
                batch_definition=batch,
                batch_parameters={"dataframe": validated},
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": examples,
                    "return_unexpected_index_query": False,
                },
            )
            validation = validator.validate_expectation_suite(suite, runtime)
        index_columns = [c for c in INDEX_COLUMNS.get(asset_name, []) if c in frame.columns]
        for result in validation.results:
            _with_examples(result, validated, index_columns)
        # the meta a validation definition's run records (Data Docs read run_id and validation_time)
        validation.meta.update(validation_id=None, checkpoint_id=None, run_id=run_id, validation_time=run_id.run_time,
                               batch_parameters={"dataframe": "<DATAFRAME>"})  # fmt: skip
        suite_id = ExpectationSuiteIdentifier(name=suite.name)
        identifier = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=validator.active_batch_id
        )
        ctx.validation_results_store.store_validation_results(
            suite_validation_result=validation,
            suite_validation_result_identifier=identifier,
            expectation_suite_identifier=suite_id,
        )
        results += validation.results
        identifiers[asset_name] = identifier
        rendered += [identifier, suite_id]
    ctx.build_data_docs(site_names=["quality"], resource_identifiers=rendered)
    pages = {
        asset_name: _file_path(site["site_url"])
        for asset_name, identifier in identifiers.items()
        for site in ctx.get_docs_sites_urls(resource_identifier=identifier, site_name="quality")
    }
    return results, site_dir / "index.html", pages


def _with_examples(result: Any, frame: pd.DataFrame, index_columns: list[str]) -> None:
    """Turn the row labels GE returned for a map expectation into the dicts it returns when
    given ``unexpected_index_column_names``: per row, the checked column(s), then the example
    columns (GE's own order and values, read with ``DataFrame.at`` as GE does)."""
    res = result.result
    if res is None or "unexpected_count" not in res:  # a table expectation: no rows to show
        return
    kwargs = result.expectation_config.kwargs
    checked = [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list") or [])
    labels = res.get("partial_unexpected_index_list")
    if labels is not None and index_columns:
        rows = []
        for label in labels:
            row: dict[str, Any] = {}
            for column in checked:
                row[column] = frame.at[label, column]
                for name in index_columns:
                    row[name] = frame.at[label, name]
            rows.append(row)
        res["partial_unexpected_index_list"] = rows
    res["unexpected_index_column_names"] = index_columns


def _file_path(url: str) -> str:
    return url.removeprefix("file://")
