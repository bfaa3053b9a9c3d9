"""The Prometheus alert rules (monitoring/rules/*.yml): valid for ``promtool check rules`` and
passing their unit tests with input series (``promtool test rules monitoring/rules/tests``),
and wired into monitoring/prometheus.yml the way docker-compose mounts them.

The Alertmanager configuration is checked by ``amtool check-config`` and its routes by
``amtool config routes test``. promtool and amtool come from Debian's ``prometheus`` and
``prometheus-alertmanager`` packages (.ci/run installs them). Under CI (``CI=true``) a
missing tool fails these tests; on a developer machine they skip."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import ROOT

RULES = ROOT / "monitoring" / "rules"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:  # never skipped: .ci/run installs it, and so must a developer
        pytest.fail(f"{name} is missing: apt-get install {package} (as .ci/run does)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def promtool() -> str:
    return _tool("promtool", "prometheus")


@pytest.fixture(scope="module")
def amtool() -> str:
    return _tool("amtool", "prometheus-alertmanager")


def _run(promtool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_promtool_checks_the_rules(promtool):
    files = sorted(str(p.relative_to(ROOT)) for p in RULES.glob("*.yml"))
    assert files, "no rule files"
    proc = _run(promtool, "check", "rules", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 8 rules found" in proc.stdout + proc.stderr


def test_promtool_unit_tests_of_the_rules_pass(promtool):
    tests = sorted(str(p.relative_to(ROOT)) for p in (RULES / "tests").glob("*.yml"))
    assert tests, "no rule tests"
    proc = _run(promtool, "test", "rules", *tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_every_alert_has_a_unit_test_that_fires_it():
    """Each alert appears in a promtool test with a non-empty exp_alerts (it is shown to fire,
    not only to stay quiet)."""
    alerts = {r["alert"] for p in RULES.glob("*.yml") for g in yaml.safe_load(p.read_text())["groups"]
              for r in g["rules"] if "alert" in r}  # fmt: skip
    fired = {
        case["alertname"]
        for p in (RULES / "tests").glob("*.yml")
        for test in yaml.safe_load(p.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == {
        "NewsrecReaderDown", "NewsrecReader5xxRate", "NewsrecReaderP99Latency", "NewsrecOpsExporterDown",
        "NewsrecLiveBatchStale", "NewsrecNoSuccessfulNightly", "NewsrecNightlyNeverSucceeded",
        "NewsrecDriftShareOverThreshold",
    }  # fmt: skip
    assert alerts - fired == set()


def test_rules_name_the_jobs_prometheus_scrapes_and_route_to_a_receiver():
    prometheus = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    jobs = {c["job_name"] for c in prometheus["scrape_configs"]}
    text = "\n".join(p.read_text() for p in RULES.glob("*.yml"))
    assert set(re.findall(r'job="([^"]+)"', text)) <= jobs
    severities = {r["labels"]["severity"] for g in yaml.safe_load((RULES / "newsrec.yml").read_text())["groups"]
                  for r in g["rules"]}  # fmt: skip
    alertmanager = yaml.safe_load((ROOT / "monitoring" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in alertmanager["receivers"]}
    routes = alertmanager["route"]["routes"]
    assert alertmanager["route"]["receiver"] in receivers
    assert {r["receiver"] for r in routes} <= receivers
    assert {f'severity="{s}"' for s in severities} <= {m for r in routes for m in r["matchers"]}
    assert all(c["to"] for r in alertmanager["receivers"] for c in r["email_configs"])
    assert "smtp_auth_password" not in alertmanager["global"]  # the password comes from a file (a secret)


def test_amtool_accepts_the_alertmanager_config_and_routes_by_severity(amtool):
    config = "--config.file=monitoring/alertmanager.yml"
    proc = _run(amtool, "check-config", "monitoring/alertmanager.yml")
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr
    for labels, receiver in (
        (("severity=page", "alertname=NewsrecNoSuccessfulNightly"), "oncall-email"),
        (("severity=warning", "alertname=NewsrecDriftShareOverThreshold", "kind=features"), "team-email"),
        (("alertname=SomethingUnlabelled",), "oncall-email"),  # nothing falls through unrouted
    ):
        proc = _run(amtool, "config", "routes", "test", config, *labels)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == receiver, (labels, proc.stdout)
