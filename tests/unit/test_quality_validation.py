"""The quality gate's cheap path through Great Expectations gives GE's own answers.

``validation`` validates widened and categorical columns and builds the example dicts itself
(GE's pandas engine builds one per unexpected row in Python when it is given example columns).
Here both paths run on the same small frame with failing rows of every kind the suites have
(a range on float32, a set on text, a compound key, nulls under a row condition, a passing
``mostly`` check with many exceptions): every result must be equal, examples included, with
ours under the pandas copy-on-write that ``validation`` runs GE in. Feature partitions are read
straight into the cheap dtypes: the frame must be the one ``cheap_dtypes`` makes of pandas' own.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.gates.quality import dtypes, validation
from pipelines.gates.quality.suites import Check


def _frame() -> pd.DataFrame:
    n = 600
    rng = np.random.default_rng(3)
    ratio = rng.uniform(0, 1, n).astype(np.float32)
    ratio[::3] = np.nan  # a third missing: the 'mostly' check passes with 200 exceptions
    ratio[[5, 50]] = np.float32(1.1)  # out of range (a float32 value that float64 shows exactly)
    frame = pd.DataFrame(
        {
            "event_id": np.arange(n, dtype=np.int64),
            "user_id": np.repeat(np.arange(n // 3, dtype=np.int64), 3),
            "category": np.tile(np.array(["news", "sports", "tech"], dtype=object), n // 3),
            "event_type": np.where(np.arange(n) % 4 == 0, "read", "impression").astype(object),
            "ratio": ratio,
            "dwell_seconds": rng.uniform(1, 100, n),
            "event_ts": np.array([f"2026-07-09 00:00:{i:06d}" for i in range(n)], dtype=object),  # stays text
        }
    )
    frame.loc[[4, 8], "dwell_seconds"] = np.nan  # reads without dwell
    frame.loc[[7, 9], "category"] = "weather"  # outside the set
    frame.loc[11, ["user_id", "category"]] = frame.loc[10, ["user_id", "category"]].to_numpy()  # a repeated pair
    return frame


CHECKS = [
    Check("t.ratio_range", "ExpectColumnValuesToBeBetween", {"column": "ratio", "min_value": 0, "max_value": 1},
          "critical", "w"),
    Check("t.ratio_null_share", "ExpectColumnValuesToNotBeNull", {"column": "ratio", "mostly": 0.5}, "warning", "w"),
    Check("t.category_known", "ExpectColumnValuesToBeInSet",
          {"column": "category", "value_set": ["news", "sports", "tech"]}, "critical", "w"),
    Check("t.key_unique", "ExpectCompoundColumnsToBeUnique", {"column_list": ["user_id", "category"]}, "critical", "w"),
    Check("t.read_dwell_present", "ExpectColumnValuesToNotBeNull", {"column": "dwell_seconds"}, "critical", "w",
          reads_only=True),
    Check("t.event_ts_not_null", "ExpectColumnValuesToNotBeNull", {"column": "event_ts"}, "critical", "w"),
]  # fmt: skip
INDEX = ["event_id", "user_id"]


def _run(frame: pd.DataFrame, result_format: dict) -> list[dict]:
    import great_expectations as gx
    from great_expectations.validator.v1_validator import Validator

    from pipelines.gates.quality.suites import build_suite

    context = gx.get_context(mode="ephemeral")
    batch = context.data_sources.add_pandas("t").add_dataframe_asset("t").add_batch_definition_whole_dataframe("d")
    suite = context.suites.add(build_suite("raw", "t", CHECKS))
    validator = Validator(batch_definition=batch, batch_parameters={"dataframe": frame}, result_format=result_format)
    return validator.validate_expectation_suite(suite).results


def test_cheap_dtypes_keep_every_value():
    frame = _frame()
    cheap = validation.cheap_dtypes(frame)
    assert cheap["ratio"].dtype == "float64" and cheap["category"].dtype == "category"
    assert cheap["event_ts"].dtype == object  # as many values as rows: categories would cost more
    assert cheap["event_id"].dtype == "int64"
    pd.testing.assert_frame_equal(cheap.astype(frame.dtypes.to_dict()), frame)
    plain = frame[["event_id", "user_id"]]
    assert validation.cheap_dtypes(plain) is plain  # nothing to change: the frame itself, not a copy


@pytest.mark.parametrize("examples", [3, 20])
def test_results_and_examples_are_the_ones_ge_builds(examples):
    frame = _frame()
    ge_own = _run(frame, {"result_format": "SUMMARY", "partial_unexpected_count": examples,
                          "unexpected_index_column_names": INDEX})  # fmt: skip
    cheap = validation.cheap_dtypes(frame)
    with validation.copy_on_write(), warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ChainedAssignmentError)  # a write GE meant would be lost
        ours = _run(cheap, {"result_format": "SUMMARY", "partial_unexpected_count": examples,
                            "return_unexpected_index_query": False})  # fmt: skip
    for result in ours:
        validation._with_examples(result, cheap, INDEX)
    assert [r.success for r in ge_own] == [False, True, False, False, False, True]
    for theirs, mine in zip(ge_own, ours, strict=True):
        assert mine.success == theirs.success
        assert mine.to_json_dict()["result"] == theirs.to_json_dict()["result"], theirs.expectation_config.meta
    dwell = ours[4].result["partial_unexpected_index_list"]
    assert [row["event_id"] for row in dwell] == [4, 8]  # reads only, by their own row labels


def test_a_partition_is_read_into_the_frame_cheap_dtypes_makes(tmp_path):
    """Two row groups with different dictionaries, nulls in text, float32 with NaN, a text column
    with more values than become categories: the same frame, values and categories."""
    frame = _frame()
    frame["category"] = frame["category"].where(frame.index % 50 != 1)  # missing text
    frame.loc[300:, "category"] = "zebra"  # the second row group has its own dictionary
    frame["sparse"] = np.where(frame.index % 7 == 0, "rare", None)
    path = tmp_path / "part.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=300)
    expected = validation.cheap_dtypes(pd.read_parquet(path))
    read = dtypes.read_parquet(path)
    assert read["category"].dtype == "category" and read["event_ts"].dtype == object
    assert read["ratio"].dtype == "float64" and read["sparse"].dtype == "category"
    pd.testing.assert_frame_equal(read, expected)
    assert dtypes.cheap_dtypes(read) is read  # nothing left to change before GE
    columns = ["user_id", "category"]
    pd.testing.assert_frame_equal(dtypes.read_parquet(path, columns), expected[columns])
