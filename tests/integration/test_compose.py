"""docker-compose.yml cannot run here (no Docker engine), so it is checked statically: every
service's command exists in the project, every mounted or built file exists, no secrets."""

from __future__ import annotations

import re

import yaml

from tests.helpers import ROOT, run_cli


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_files_exist():
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "reader", "prometheus",
            "grafana", "dask-scheduler", "dask-worker", "alertmanager", "ops-exporter"} <= set(services)  # fmt: skip
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).exists(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)


def test_every_newsrec_command_exists():
    """Each `newsrec ...` in a service command is a real CLI command (its --help works)."""
    commands = []
    for svc in _compose()["services"].values():
        command = svc.get("command")
        if not command:
            continue
        text = " ".join(command) if isinstance(command, list) else command
        commands += re.findall(r"newsrec ((?:[a-z-]+ ?)+)", text)
    assert commands, "no newsrec command in the compose file"
    for words in commands:
        parts = [w for w in words.split() if not w.startswith("-")][:2]
        proc = run_cli(*parts, "--help")
        assert proc.returncode == 0, (words, proc.stderr)


def test_airflow_commands_are_airflow_subcommands():
    for svc in _compose()["services"].values():
        command = svc.get("command")
        if isinstance(command, list) and command[0] == "airflow":
            assert command[1] in {"api-server", "scheduler", "dag-processor", "triggerer", "db"}


def test_no_literal_secrets():
    text = (ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET)\w*:\s*\S", line) and "${" not in line and "_FILE:" not in line:
            raise AssertionError(f"literal secret in docker-compose.yml: {line.strip()}")
    assert (ROOT / ".env.example").exists()


def test_the_reader_gets_only_the_read_only_role():
    reader = _compose()["services"]["reader"]
    env = reader["environment"]
    assert "NEWSREC_DATABASE_URL" not in env
    assert env["NEWSREC_READER_DATABASE_URL"].startswith("postgresql://newsrec_reader:")
    assert "POSTGRES_PASSWORD" not in str(reader)
    assert all(v.endswith(":ro") for v in reader.get("volumes", []))


def test_dask_services_run_the_pipelines_image_with_what_workers_need():
    """The scheduler and workers use the pipelines' image (same package versions as the
    client, which the stages check), the workers get the database URL and the newsrec home
    the airflow services write features into, and every dask flag used is a real one."""
    import subprocess
    import sys
    from pathlib import Path

    services = _compose()["services"]
    airflow, scheduler, worker = services["airflow-scheduler"], services["dask-scheduler"], services["dask-worker"]
    assert scheduler["build"] == worker["build"] == airflow["build"]
    assert {"NEWSREC_DATABASE_URL", "NEWSREC_HOME"} <= set(worker["environment"])
    assert worker["environment"]["NEWSREC_DATABASE_URL"] == airflow["environment"]["NEWSREC_DATABASE_URL"]
    home = worker["environment"]["NEWSREC_HOME"]
    assert f"newsrec-home:{home}" in worker["volumes"] and f"newsrec-home:{home}" in airflow["volumes"]
    assert "8786:8786" in scheduler["ports"]
    text = (ROOT / "docker-compose.yml").read_text()
    assert "NEWSREC_DASK_ADDRESS: tcp://dask-scheduler:8786" in text
    dask = Path(sys.executable).parent / "dask"
    for svc in (scheduler, worker):
        words = svc["command"][-1].removeprefix("exec ").split()
        assert words[0] == "dask" and words[1] in {"scheduler", "worker"}
        if words[1] == "worker":
            assert words[2] == "tcp://dask-scheduler:8786"
        usage = subprocess.run([str(dask), words[1], "--help"], capture_output=True, text=True, timeout=60).stdout
        for flag in (w for w in words if w.startswith("--")):
            assert flag in usage, (words[1], flag)


def _container_port(svc: dict) -> set[str]:
    return {p.split(":")[-1] for p in svc.get("ports", [])}


def test_prometheus_loads_the_rules_and_reaches_what_it_scrapes_and_alertmanager():
    """rule_files points where the rules are mounted; every scrape target and the Alertmanager
    are services of this file listening on that port; the ops exporter is served by the
    `newsrec ops exporter` command on its port, with its own database URL (no reader role)."""
    from pathlib import PurePosixPath

    services = _compose()["services"]
    prometheus = services["prometheus"]
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    mounts = dict(v.split(":")[1::-1] for v in prometheus["volumes"])  # container path -> host path
    assert mounts["/etc/prometheus/prometheus.yml"] == "./monitoring/prometheus.yml"
    for pattern in config["rule_files"]:
        folder = str(PurePosixPath(pattern).parent)
        assert mounts[folder] == "./monitoring/rules", pattern
        assert list((ROOT / "monitoring" / "rules").glob(PurePosixPath(pattern).name))
    targets = [t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    targets += [t for a in config["alerting"]["alertmanagers"] for c in a["static_configs"] for t in c["targets"]]
    assert "alertmanager:9093" in targets and "ops-exporter:9464" in targets
    for target in targets:
        host, port = target.split(":")
        assert host in services and port in _container_port(services[host]), target
        assert host in prometheus["depends_on"], target
    exporter = services["ops-exporter"]
    assert exporter["command"][:3] == ["newsrec", "ops", "exporter"]
    assert exporter["command"][exporter["command"].index("--port") + 1] == "9464"
    assert set(exporter["environment"]) == {"NEWSREC_OPS_EXPORTER_DATABASE_URL"}  # not the pipelines' URL
    assert exporter["environment"]["NEWSREC_OPS_EXPORTER_DATABASE_URL"].startswith("postgresql://newsrec_ops_exporter:")
    assert "POSTGRES_PASSWORD" not in str(exporter)
    assert "OPS_EXPORTER_DB_PASSWORD=" in (ROOT / ".env.example").read_text()


def test_alertmanager_gets_its_config_and_the_smtp_password_as_a_secret():
    compose = _compose()
    alertmanager = compose["services"]["alertmanager"]
    assert "./monitoring/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in alertmanager["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    config = yaml.safe_load((ROOT / "monitoring" / "alertmanager.yml").read_text())
    secret = config["global"]["smtp_auth_password_file"]
    assert secret.startswith("/run/secrets/")
    name = secret.removeprefix("/run/secrets/")
    assert name in alertmanager["secrets"] and name in compose["secrets"]
    assert compose["secrets"][name]["file"].removeprefix("./") in (ROOT / ".gitignore").read_text().split()


def test_the_mlflow_ui_reads_the_registry_of_record_with_the_shared_home():
    services = _compose()["services"]
    ui = services["mlflow-ui"]
    command = " ".join(ui["command"])
    assert command.startswith("mlflow ui") and "5000" in command
    assert "@postgres:5432/newsrec_mlflow" in command  # core/db.py's '{main}_mlflow' database
    assert "newsrec-home:/var/lib/newsrec" in ui["volumes"]  # the artifact paths the runs recorded
    assert "5000:5000" in ui["ports"]
    assert services["airflow-apiserver"]["environment"]["NEWSREC_MLFLOW_UI_URL"] == "http://localhost:5000"
