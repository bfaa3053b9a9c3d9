"""Progress bars show on a real terminal (a pseudo-terminal, no stand-in) and stay out of logs
(a pipe); the training bar counts LightGBM's real boosting rounds."""

import fcntl
import os
import struct
import subprocess
import sys
import termios

import lightgbm as lgb
import numpy as np
from tqdm import tqdm

from pipelines.core import progress

_BAR = """
from pipelines.core import progress
with progress.bar(3, "backfill", unit="night") as bar:
    for _ in range(3):
        bar.update(1)
"""


def _stderr_of_bar(on_terminal: bool) -> str:
    if not on_terminal:
        return subprocess.run([sys.executable, "-c", _BAR], capture_output=True, text=True, check=True).stderr
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    try:
        subprocess.run([sys.executable, "-c", _BAR], stderr=slave, check=True)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's other end is closed: all was read
                break
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")
    finally:
        os.close(master)


def test_bar_writes_on_a_terminal_and_nothing_into_a_log():
    assert "backfill" in _stderr_of_bar(on_terminal=True)
    assert _stderr_of_bar(on_terminal=False) == ""


def test_boosting_callback_counts_every_tree():
    rng = np.random.default_rng(0)
    X, y = rng.random((200, 3)), rng.random(200)
    data = lgb.Dataset(X, y)
    with open(os.devnull, "w") as sink, tqdm(total=7, file=sink, disable=False) as bar:  # counts even off a terminal
        booster = lgb.train(
            {"objective": "regression", "verbosity": -1},
            data,
            num_boost_round=7,
            valid_sets=[data],
            callbacks=[progress.boosting_callback(bar)],
        )
        assert bar.n == booster.num_trees() == 7
