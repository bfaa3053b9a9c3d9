"""The drift gates' seeded sampling: the positions drawn without the frame are the rows
``DataFrame.sample`` keeps (the feature gate builds only those rows of a big day), and the
report's line says how many rows its statistics saw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.gates.drift import compare


@pytest.mark.parametrize(("length", "rows", "seed"), [(1_000, 300, 17), (50_001, 50_000, 17), (7, 3, 0)])
def test_positions_are_the_rows_dataframe_sample_keeps_in_its_order(length, rows, seed):
    frame = pd.DataFrame({"x": np.arange(length) * 1.5, "y": np.arange(length) % 7})
    positions = compare.sample_positions(length, rows, seed)
    assert positions is not None and len(positions) == rows
    pd.testing.assert_frame_equal(frame.iloc[positions].reset_index(drop=True), compare.sample(frame, rows, seed))


def test_a_frame_that_fits_is_not_sampled():
    assert compare.sample_positions(300, 300, 17) is None
    frame = pd.DataFrame({"x": range(300)})
    assert compare.sample(frame, 300, 17) is frame


def test_the_report_line_names_the_sample_or_all_rows():
    rows = {"current": 529_360, "reference": 3_676_400}
    sampled = {"rows": rows, "sampled": {"current": 50_000, "reference": 50_000}}
    line = compare.sample_note(sampled, 17)
    assert "seeded sample (seed 17" in line and "current 50,000 of 529,360 rows" in line
    assert "reference 50,000 of 3,676,400 rows" in line
    whole = {"rows": {"current": 400, "reference": 2_800}, "sampled": {"current": 400, "reference": 2_800}}
    assert compare.sample_note(whole, 17).startswith("Statistics computed on all rows: current 400 of 400")
