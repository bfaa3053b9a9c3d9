"""The nightly report as on-call reads it: rounded numbers, links that open, charts of the last
nights (gaps stay gaps), and the plugin's index of reports as a table of days by kind."""

from __future__ import annotations

import html
import importlib.util
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.core import db, runs
from pipelines.core.config import get_settings
from pipelines.gates.drift import ColumnDrift, DriftResult
from pipelines.gates.drift.store import store_result
from pipelines.gates.retrain import RetrainDecision, _record
from pipelines.model import promotion, registry
from pipelines.nightly import report
from tests.helpers import admin_sql, use_database

D = date(2026, 4, 10)
NIGHTS = [D - timedelta(days=3), D - timedelta(days=2), D]  # D-1 has no record: a gap
STAGES = ["features", "quality_gate", "score"]
MLFLOW_LINK = re.compile(r"^https?://[^ ]+/#/models/[^/]+/versions/\d+$")
ROOT = Path(__file__).resolve().parents[2]


def _night(day: date, n: int) -> None:
    """Records of one night as the stages write them, with numbers of many digits."""
    for stage in STAGES:
        with runs.record_run(stage, day):
            pass
    drift_html = get_settings().reports_dir / "drift" / day.isoformat() / "features-1.html"
    drift_html.parent.mkdir(parents=True, exist_ok=True)
    drift_html.write_text("<html>evidently</html>")
    col = ColumnDrift("user_dwell_7d_s", "num", "wasserstein", 0.1, 0.123456789, True)
    store_result(
        DriftResult("features", day, [day - timedelta(days=1)], True, 1 / 3, 0.2, [col], report_path=drift_html)
    )
    store_result(DriftResult("target", day, [day - timedelta(days=1)], True, 0.987654321, 0.2, [col]))
    evidence = {"drift_share": 1 / 3, "champion_age_days": n, "champion_ndcg_today": 0.71234567 - n / 100}
    _record(RetrainDecision(day, True, "full", "1", ["feature drift"], evidence))
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ops.business_metrics (logical_date, arm, region, in_cohort, model_version, active_users,"
            " impressions, reads, dwell_s, dwell_per_user_s, ctr, coverage, diversity)"
            " VALUES (%s, 'champion', 'eu', false, '1', 7, 90, 13, %s, %s, 0.144444444, 0.3333333, 2.71828182)",
            (day, 864.197531 + n, (864.197531 + n) / 7),
        )


@pytest.fixture(scope="module")
def history(pg_server, migrated_template, tmp_path_factory):
    """Three nights of records (and a gap) in a database of this module; the reports of the
    first and the last night. Tests only read it."""
    admin_sql(pg_server, f"CREATE DATABASE report_pages TEMPLATE {migrated_template}")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, pg_server.format(db="report_pages"), tmp_path_factory.mktemp("report_home"))
        for n, day in enumerate(NIGHTS):
            _night(day, n)
        with runs.record_run("train", D) as run:
            run.details.update(
                version="2", promoted=True, ndcg=0.7234567891234, ips_ndcg=0.4123, mode="full", objective="plain"
            )
        comparison = {"metric": "ips_ndcg@10", "estimator": "snips", "challenger": 0.5123456,
                      "champion": 0.4987654, "difference": 0.0135802, "lower": 0.0041234}  # fmt: skip
        promotion.record(promotion.Decision(True, "2", "1", ["beats the champion"],
                                            {"challenger_ndcg@10": 0.7234567891234, "comparison": comparison}),
                         D)  # fmt: skip
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO ops.experiments (name, salt) VALUES ('e1', 's') RETURNING experiment_id")
            evidence = {"mean_challenger": 130.123456, "mean_champion": 123.456789, "diff": 6.666667,
                        "ci": [1.23456789, 12.3456789], "days": 3, "n_challenger": 40, "n_champion": 41}  # fmt: skip
            cur.execute(
                "INSERT INTO ops.experiment_decisions (experiment_id, logical_date, arm, model_version, decision,"
                " share_before, share_after, reasons, evidence) VALUES (%s, %s, 'a', '2', 'step', 0.2, 0.5, %s, %s)",
                (cur.fetchone()[0], D, json.dumps(["the arm reads longer"]), json.dumps(evidence)),
            )
            cur.execute("INSERT INTO ops.alerts (logical_date, source, task, error) VALUES (%s, 'dag', 'score', 'x')",
                        (D,))  # fmt: skip
        report.write_nightly_report(NIGHTS[0])
        report.write_nightly_report(D)
        yield get_settings().reports_dir / "nightly" / D.isoformat()


def _significant(number: str) -> int:
    digits = number.replace(".", "").lstrip("0")
    return len(digits) if "." in number else len(digits.rstrip("0"))


def test_numbers_are_rounded_in_both_formats(history):
    md, page = (history / "report.md").read_text(), (history / "report.html").read_text()
    text = re.sub(r"<[^>]+>", " ", page)  # the HTML's visible text
    for body in (re.sub(r"\]\([^)]*\)", "]", md), text):
        numbers = re.findall(r"(?<![\w.-])\d+\.\d+(?![\w.])", body)
        assert numbers, "the report shows decimals"
        assert [n for n in numbers if _significant(n) > 4] == []
        assert "0.7235" in body and "33.3%" in body and "98.8%" in body  # NDCG, drift shares
        # the gate's paired comparison on the unbiased metric: both models' values, difference, bound
        assert "ips_ndcg@10 0.5123 vs 0.4988: 0.01358 [>= 0.004123] (snips)" in html.unescape(body)
        assert "123.7" in body  # dwell per user: seconds to one decimal
        assert "[1.235, 12.35]" in body and "20.0%" in body and "50.0%" in body  # an experiment's CI and shares
        assert " UTC" in body  # the alert's time, in UTC
    assert report.fmt(12345.678) == "12350" and report.fmt(0.000123456) == "0.0001235"
    assert (
        report.fmt(0.99995) == "1.000" and report.fmt(0.3, "share") == "30.0%" and report.fmt(2.26, "seconds") == "2.3"
    )


def test_every_link_opens(history):
    page = (history / "report.html").read_text()
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', page) + re.findall(r"(?:href|src)='([^']+)'", page)
    assert registry.ui_link("2") in hrefs  # the version trained and promoted, in the MLflow UI
    assert "../../drift/2026-04-10/features-1.html" in hrefs  # relative to the report's folder
    assert f"../{NIGHTS[0]}/report.html" in hrefs  # previous night; no later night exists
    for href in hrefs:
        assert MLFLOW_LINK.match(href) or (history / href).resolve().is_file(), href
    md = (history / "report.md").read_text()
    md_links = re.findall(r"\]\(([^)]+)\)", md)
    assert "charts/stage_seconds.svg" in md_links
    for href in md_links:
        assert MLFLOW_LINK.match(href) or (history / href).resolve().is_file(), href
    assert "Evidently" in md and report.LABEL_DRIFT_NOTE in md


def _series(svg: str) -> dict[str, int]:
    """Each line's group id and how many points (markers) it draws."""
    out = {}
    for gid, body in re.findall(r'<g id="(series-[^"]+)">(.*?)</g>\s*(?=<g id="(?:series-|legend|patch|text))',
                                svg, re.S):  # fmt: skip
        out[gid] = body.count("<use ")
    return out


def test_charts_cover_the_window_with_gaps(history):
    stages = _series((history / "charts" / "stage_seconds.svg").read_text())
    # one series per stage recorded in the window (report is recorded by the stage runner, not here)
    assert set(stages) == {f"series-{s}" for s in [*STAGES, "train"]}
    assert stages["series-features"] == 3  # three nights with records, the gap night draws no point
    assert stages["series-train"] == 1  # a single night still draws its point
    ndcg = (history / "charts" / "ndcg.svg").read_text()
    # the simulator logs positions: the train runs carry the unbiased (IPS) estimate beside the logged one
    assert set(_series(ndcg)) == {"series-champion", "series-trained-model", "series-trained-model-unbiased-IPS"}
    assert set(_series((history / "charts" / "drift_share.svg").read_text())) == {"series-features", "series-target"}
    assert _series((history / "charts" / "dwell_per_user.svg").read_text()) == {"series-champion": 3}


def _plugin():
    spec = importlib.util.spec_from_file_location("newsrec_plugin_under_test", ROOT / "plugins" / "newsrec_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_index_is_a_table_of_days_by_kind(history):
    from fastapi.testclient import TestClient

    client = TestClient(_plugin().app)
    page = client.get("/").text
    assert "<table" in page and "<style>" in page
    days = re.findall(r"<th scope=\"row\">(\d{4}-\d\d-\d\d)</th>", page)
    assert days == sorted(days, reverse=True) and days[0] == D.isoformat()
    row = page.split(f'<th scope="row">{D}</th>', 1)[1].split("</tr>", 1)[0]
    assert f'href="/newsrec/reports/nightly/{D}/"' in row and f'href="/newsrec/reports/drift/{D}/"' in row
    assert '<td class="none">–</td>' in row  # no quality report that day: a dash
    assert "nightly report, 2026-04-10" in client.get(f"/reports/nightly/{D}/").text
    moved = client.get(f"/reports/nightly/{D}", follow_redirects=False)  # relative links need the slash
    assert moved.status_code in (302, 307) and moved.headers["location"] == f"/newsrec/reports/nightly/{D}/"
    listing = client.get(f"/reports/drift/{D}/").text
    assert f'href="/newsrec/reports/drift/{D}/features-1.html"' in listing and "<style>" in listing
    chart = client.get(f"/reports/nightly/{D}/charts/stage_seconds.svg")
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/reports/../../etc/passwd").status_code == 404
