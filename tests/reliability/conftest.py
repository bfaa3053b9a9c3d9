"""Fixtures of the fault, concurrency and bad-data tests: a PostgreSQL server of their own,
a nightly world built on it once per session, and the result of an undisturbed run of D."""

from __future__ import annotations

import itertools
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import nightly_world as nw

_clones = itertools.count()


@pytest.fixture(scope="session")
def rel_shared(tmp_path_factory) -> Path:
    """A folder that every pytest-xdist worker of this run sees (the run's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def nightly_template(rel_shared) -> dict:
    """Built once per run, whatever the number of workers (nightly_world.shared_template)."""
    return nw.shared_template(rel_shared)


@pytest.fixture(scope="session")
def rel_server(nightly_template) -> Iterator[nw.Server]:
    """This worker's server: a copy of the template's stopped server (a test may restart it)."""
    server = nw.Server(copy_of=nightly_template["pgdata"])
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def make_world(rel_server, nightly_template, tmp_path_factory):
    """Clone the template: returns (url, home) of a new world (the caller points at it)."""

    def make(label: str) -> tuple[str, Path]:
        name = f"rel_{label}_{os.getpid()}_{next(_clones)}"
        home = tmp_path_factory.mktemp(name) / "home"
        return nw.clone(rel_server, nightly_template["name"], nightly_template["home"], name, home), home

    return make


@pytest.fixture(scope="session")
def reference(make_world, rel_shared) -> dict:
    """What an undisturbed nightly run of D leaves: the state every disturbed run must reach
    (run once per run of the suite, by the first worker that needs it; the others read it)."""
    from filelock import FileLock

    from pipelines.nightly import runner

    saved = rel_shared / "rel_reference.pickle"
    with FileLock(str(rel_shared / "rel_reference.lock")):
        if saved.exists():
            before, after = pickle.loads(saved.read_bytes())
        else:
            url, home = make_world("reference")
            with nw.pointed_at(url, home):
                before = nw.snapshot()
                runner.run_day(nw.D, force_retrain=True, **nw.RUN)
                after = nw.snapshot()
            saved.write_bytes(pickle.dumps((before, after)))
    assert after["live_batch"][0] == nw.D and after["live"] and after["live"] != before["live"]
    assert after["registry"]["champion"] != before["registry"]["champion"], "the reference run must promote"
    return {"before": before, "after": after}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """schemathesis gives every operation of one test the same node id (the name alone carries
    the operation); pytest-xdist schedules by node id and would run one operation of four."""
    for item in items:
        if type(item).__name__ == "SchemathesisFunction" and "[" in item.name and "[" not in item.nodeid:
            from _pytest.nodeid import NodeId  # pytest 9 keeps the id structured (a private API, pinned)

            item._id = NodeId.parse(f"{item.nodeid}[{item.name.split('[', 1)[1]}")
