"""``newsrec bench compare-nightly``: two runs of one world side by side (pure rendering)."""

from __future__ import annotations

from pipelines.bench.nightly_compare import render


def _run(schedule: str | None, seconds: dict[str, float], digest: str, night: dict | None = None) -> dict:
    cycle = {"seconds": sum(seconds.values()), "peak_with_pg_mb": 4096.0}
    if schedule:
        cycle.update(schedule=schedule, night_memory=night)
    return {
        "measured_at": "2026-12-03T10:00:00+00:00",
        "machine": {"cpus": 2},
        "config": {"users": 1000, "articles_per_day": 100, "days": 7, "day": "2026-12-02"},
        "cycle": cycle,
        "stages": [
            {
                "name": n,
                "seconds": s,
                "peak_rss_mb": 100.0,
                "details": {"lists_digest": digest} if n == "score + publish" else {},
            }
            for n, s in seconds.items()
        ],  # fmt: skip
        "ranking_quality": {"truth_ndcg@10": {"model": 0.8, "ceiling": 0.81}},
    }


def test_side_by_side_gives_ratios_memory_and_whether_the_lists_match():
    before = _run(None, {"train": 300.0, "score + publish": 100.0}, "abc")
    after = _run("plan", {"train": 150.0, "score + publish": 100.0, "propensity": 20.0}, "abc",
                 {"together_peak_mb": 6144.0, "processes_peak_mb": 5000.0, "pg_peak_mb": 1100.0})  # fmt: skip
    text = render(before, after, "2c93c56", "this tree")
    assert "| whole cycle | 6.7 min (serial) | 4.5 min (plan) | 1.48x |" in text
    assert "| train | 300.0 | 150.0 | 2.00x |" in text
    assert "| propensity |  | 20.0 |  |" in text  # a stage only one side has
    assert "4.0 GiB (largest stage + server, upper bound) | 6.0 GiB (sampled together)" in text
    assert "the same lists" in text and "understates" in text
    other = render(before, _run("plan", {"train": 1.0}, "xyz", {"together_peak_mb": 1.0}), "a", "b")
    assert "different lists" in other
