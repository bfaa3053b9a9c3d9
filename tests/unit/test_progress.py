"""Progress bars show on a terminal and stay out of logs; the training bar counts trees."""

import io
import sys

import lightgbm as lgb
import numpy as np

from pipelines.core import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_writes_on_a_terminal_only(monkeypatch):
    for stream, shows in ((_Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        with progress.bar(3, "backfill", unit="night") as bar:
            for _ in range(3):
                bar.update(1)
        assert ("backfill" in stream.getvalue()) is shows


def test_boosting_callback_counts_every_tree(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    rng = np.random.default_rng(0)
    X, y = rng.random((200, 3)), rng.random(200)
    data = lgb.Dataset(X, y)
    with progress.bar(7, "training trees", unit="tree") as bar:
        booster = lgb.train(
            {"objective": "regression", "verbosity": -1},
            data,
            num_boost_round=7,
            valid_sets=[data],
            callbacks=[progress.boosting_callback(bar)],
        )
        assert bar.n == booster.num_trees() == 7
        assert "l2" in bar.postfix
