"""Batch scoring in several local processes (``scoring.processes``): the lists of one process,
and a process that dies publishes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from pipelines.core.config import PROJECT_ROOT, reset_caches
from pipelines.core.errors import NewsrecError
from pipelines.serving import batch, distributed
from tests.helpers import query, use_database
from tests.model.conftest import DAY

KEYS = ["user_id", "rank"]


def _params(mp: pytest.MonkeyPatch, folder: Path, **scoring) -> None:
    data = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    data["scoring"].update(scoring)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    mp.setenv("NEWSREC_PARAMS_FILE", str(path))
    reset_caches()


@pytest.fixture(scope="module")
def in_world(trained, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, trained["url"], trained["home"])
        _params(mp, tmp_path_factory.mktemp("one"), processes=1)
        one = batch.score(DAY)
        _params(mp, tmp_path_factory.mktemp("three"), processes=3, processes_min_users=0)
        yield {**trained, "one": one, "mp": mp}
    reset_caches()


def test_three_processes_give_the_lists_of_one(in_world):
    one = in_world["one"]
    three = batch.score(DAY)
    assert (one.partitions, three.partitions) == (1, 3)
    assert (one.users, one.candidates) == (three.users, three.candidates) and one.users > 300
    x = one.recommendations.sort_values(KEYS).reset_index(drop=True)
    y = three.recommendations.sort_values(KEYS).reset_index(drop=True)
    columns = [*KEYS, "article_id", "reason", "model_version"]
    assert x[columns].equals(y[columns])
    np.testing.assert_array_equal(x["score"].to_numpy(), y["score"].to_numpy())


def test_small_days_and_bad_settings(in_world, tmp_path):
    mp: pytest.MonkeyPatch = in_world["mp"]
    assert distributed.local_processes(DAY) == 3
    _params(mp, tmp_path, processes=3)  # the default floor: the world's ~700 users are too few
    assert distributed.local_processes(DAY) == 1
    _params(mp, tmp_path, processes=-1)
    with pytest.raises(NewsrecError, match="scoring.processes must be 0"):
        distributed.local_processes(DAY)
    _params(mp, tmp_path, processes=3, processes_min_users=0)


def test_a_process_that_dies_publishes_nothing(in_world, monkeypatch, tmp_path):
    batch.score_and_publish(DAY)  # a live batch to protect
    live = query("SELECT batch_id FROM serving.live")[0][0]
    rows = query("SELECT count(*), sum(article_id) FROM serving.recommendations WHERE batch_id = %s", (live,))
    batches = query("SELECT count(*) FROM serving.batches")[0][0]
    monkeypatch.setenv("NEWSREC_FAULT", "kill:score_partition")  # each process, at its first chunk (SIGKILL)
    monkeypatch.setenv("NEWSREC_FAULT_DIR", str(tmp_path))
    with pytest.raises(NewsrecError, match=r"scoring in 3 processes failed, nothing published") as err:
        batch.score_and_publish(DAY)
    assert "\n" not in str(err.value)
    assert query("SELECT batch_id FROM serving.live")[0][0] == live
    assert query("SELECT count(*), sum(article_id) FROM serving.recommendations WHERE batch_id = %s", (live,)) == rows
    assert query("SELECT count(*) FROM serving.batches")[0][0] == batches
