"""The model registry of record: MLflow, with its backend store on the project's PostgreSQL.

Every trained model is registered with its lineage (data window, data hash, feature service,
git commit, params, metrics) and its matrix signature. The ``champion`` alias is what scoring
uses; each promotion remembers the version it replaced (alias ``previous-champion`` and a
``promoted_from`` tag), so rollback is one move. Neptune, whose hosted service closed in
March 2026, is only an optional offline mirror (:func:`mirror_to_neptune`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.core import db
from pipelines.core.config import PROJECT_ROOT, get_settings, params
from pipelines.core.errors import NewsrecError
from pipelines.core.faults import checkpoint
from pipelines.features.matrix import MatrixSpec

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous-champion"


def model_name() -> str:
    return params("registry").get("model_name", "newsrec-ranker")


def tracking_uri() -> str:
    name = f"{db.main_database_name()}_mlflow"
    db.ensure_database(name)
    return db.sqlalchemy_url(name)


def _mlflow():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow


def _client():
    from mlflow import MlflowClient

    _mlflow()
    return MlflowClient()


def experiment_id() -> str:
    mlflow = _mlflow()
    name = params("registry").get("experiment", "newsrec-ranker")
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = get_settings().artifacts_dir / "mlflow"
    location.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(name, artifact_location=location.as_uri())


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class LoadedModel:
    version: str
    booster: Any  # lightgbm.Booster
    spec: MatrixSpec
    tags: dict[str, str]
    run_id: str

    def predict(self, X) -> Any:
        return self.booster.predict(X, num_threads=params("training").get("lightgbm", {}).get("num_threads", 2))


def register(
    booster: Any,
    spec: MatrixSpec,
    metrics: dict[str, float],
    hyper_params: dict[str, Any],
    lineage: dict[str, str],
    artifacts: dict[str, Any] | None = None,
) -> str:
    """Log a run with the booster and register it as a new version; returns the version.

    The run (model file, metrics, artifacts) is logged first; the version is then created
    together with all its tags in one registry transaction, so a crash at any point leaves
    either no version or a complete one (at worst an orphan run that no version points at).
    """
    _mlflow()
    import mlflow
    import mlflow.lightgbm

    checkpoint("register_start")
    tags = {**lineage, "git_commit": git_commit(), "feature_service": spec.feature_service}
    with mlflow.start_run(experiment_id=experiment_id(), run_name=lineage.get("run_name")) as run:
        mlflow.log_params({k: v for k, v in hyper_params.items() if not isinstance(v, (list, dict))})
        mlflow.log_metrics({k.replace("@", "_at_"): float(v) for k, v in metrics.items() if v == v})
        mlflow.set_tags(tags)
        mlflow.log_dict(spec.to_dict(), "matrix_spec.json")
        for name, body in (artifacts or {}).items():
            mlflow.log_dict(body, name)
        # the flavor's own pinned requirement (lightgbm==<installed>): without it MLflow infers the
        # requirements by loading the model in a fresh Python process, ~10 s of CPU per version
        info = mlflow.lightgbm.log_model(
            booster, name="model", pip_requirements=mlflow.lightgbm.get_default_pip_requirements()
        )
        run_id = run.info.run_id
    checkpoint("register_logged")
    version_tags = {**tags, "matrix_spec": json.dumps(spec.to_dict()), "run_id": run_id, "complete": "true"}
    mv = mlflow.register_model(info.model_uri, model_name(), tags={k: str(v) for k, v in version_tags.items()})
    return str(mv.version)


def version_info(ref: str) -> dict[str, Any] | None:
    """A version by number or alias, as a plain dict; None when it does not exist."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        mv = (
            client.get_model_version(model_name(), ref)
            if ref.isdigit()
            else client.get_model_version_by_alias(model_name(), ref)
        )
    except MlflowException:
        return None
    return {
        "version": str(mv.version),
        "aliases": list(mv.aliases or []),
        "tags": dict(mv.tags or {}),
        "created": mv.creation_timestamp,
        "run_id": mv.run_id,
    }


def champion_version() -> str | None:
    info = version_info(CHAMPION)
    return info["version"] if info else None


def champion_as_of(day: date) -> dict[str, Any] | None:
    """The champion that day ``day``'s run started from: the current one, or the one it
    replaced if the current champion was itself trained for ``day`` or later (re-runs and
    backfills then judge a day against the same model as the first run did)."""
    info = version_info(CHAMPION)
    seen: set[str] = set()
    while info is not None and info["version"] not in seen:
        seen.add(info["version"])
        trained_for = info["tags"].get("logical_date")
        if trained_for is None or date.fromisoformat(trained_for) < day:
            return info
        before = info["tags"].get("promoted_from")
        info = version_info(before) if before else None
    return None


def find_version(**tags: str) -> dict[str, Any] | None:
    """The newest complete version whose tags include all of ``tags``."""
    for row in reversed(list_versions()):
        if row["tags"].get("complete") == "true" and all(row["tags"].get(k) == v for k, v in tags.items()):
            return version_info(row["version"])
    return None


def load(ref: str = CHAMPION) -> LoadedModel:
    """Load a complete registered version (number or alias) with its signature."""
    info = version_info(ref)
    if info is None:
        raise NewsrecError(f"no model {ref!r} in the registry {model_name()!r}")
    if info["tags"].get("complete") != "true":
        raise NewsrecError(f"model version {info['version']} was not registered completely")
    _mlflow()
    import mlflow.lightgbm

    booster = mlflow.lightgbm.load_model(f"models:/{model_name()}/{info['version']}")
    spec = MatrixSpec.from_dict(json.loads(info["tags"]["matrix_spec"]))
    return LoadedModel(info["version"], booster, spec, info["tags"], info["run_id"])


def ui_link(version: str) -> str:
    """The MLflow UI page of a registered version (``NEWSREC_MLFLOW_UI_URL``)."""
    return f"{get_settings().mlflow_ui_url.rstrip('/')}/#/models/{model_name()}/versions/{version}"


def artifact_key(version: str) -> str:
    """The name of a version's files outside MLflow: ``<version>-<run id>``. The run id is the
    registry's own identity of the version (numbers repeat across registries)."""
    info = version_info(str(version))
    if info is None:
        raise NewsrecError(f"no model version {version}")
    return f"{info['version']}-{info['run_id']}"


def serving_model_dir(version: str) -> Path:
    """Where a version's model file, signature and compiled library live for serving."""
    return get_settings().serving_models_dir / artifact_key(version)


def export_for_serving(version: str) -> Any:
    """Write a version's model file and signature where the reader loads them from, so the
    reader needs neither MLflow nor its database to explain a recommendation."""
    import os as _os

    folder = serving_model_dir(version)
    if (folder / "model.txt").exists() and (folder / "spec.json").exists():
        return folder
    model = load(version)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".model.{_os.getpid()}.tmp"
    model.booster.save_model(str(tmp))
    (folder / "spec.json").write_text(json.dumps(model.spec.to_dict()))
    _os.replace(tmp, folder / "model.txt")
    return folder


def previous_champion() -> str | None:
    """The version the champion replaced (where a one-step rollback goes), if any."""
    info = version_info(PREVIOUS)
    return info["version"] if info else None


def set_champion(version: str) -> str | None:
    """Point ``champion`` at ``version``; returns the version it replaced. Only
    :func:`pipelines.model.promotion.promote` calls this (it records the decision)."""
    client = _client()
    if version_info(version) is None:
        raise NewsrecError(f"no model version {version}")
    current = champion_version()
    if current == version:
        return current
    checkpoint("promote_start")
    if current:
        client.set_registered_model_alias(model_name(), PREVIOUS, current)
        client.set_model_version_tag(model_name(), version, "promoted_from", current)
    client.set_registered_model_alias(model_name(), CHAMPION, version)
    return current


def rollback() -> tuple[str, str]:
    """Move ``champion`` back to the version it replaced; returns (from, to). Only
    :func:`pipelines.model.promotion.promote` calls this (it records the decision)."""
    client = _client()
    current = version_info(CHAMPION)
    previous = version_info(PREVIOUS)
    if current is None:
        raise NewsrecError("there is no champion to roll back")
    if previous is None:
        raise NewsrecError(f"champion {current['version']} has no previous champion to roll back to")
    client.set_registered_model_alias(model_name(), CHAMPION, previous["version"])
    before = previous["tags"].get("promoted_from")
    if before and version_info(before):
        client.set_registered_model_alias(model_name(), PREVIOUS, before)
    else:
        client.delete_registered_model_alias(model_name(), PREVIOUS)
    return current["version"], previous["version"]


def list_versions() -> list[dict[str, Any]]:
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        found = client.search_model_versions(f"name='{model_name()}'")
        if not found:
            return []
    except MlflowException:
        return []
    by_version: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(model_name()).aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    rows = [
        {
            "version": str(mv.version),
            "aliases": sorted(by_version.get(str(mv.version), [])),
            "tags": dict(mv.tags or {}),
            "created": mv.creation_timestamp,
        }
        for mv in found
    ]
    return sorted(rows, key=lambda r: int(r["version"]))


def run_metrics(run_id: str) -> dict[str, float]:
    return dict(_client().get_run(run_id).data.metrics)


def run_artifact_names(run_id: str) -> set[str]:
    """The top-level artifacts logged with a run (``evaluation.json``, ``model``, ...)."""
    return {f.path for f in _client().list_artifacts(run_id)}


def mirror_to_neptune(version: str, metrics: dict[str, float], lineage: dict[str, str]) -> str | None:
    """Write the same run as a Neptune offline run when NEWSREC_NEPTUNE_MIRROR=1 (optional)."""
    if os.environ.get("NEWSREC_NEPTUNE_MIRROR") != "1":
        return None
    import neptune

    os.environ.setdefault("NEPTUNE_DATA_DIRECTORY", str(get_settings().home / "neptune"))
    run = neptune.init_run(mode="offline", project="newsrec/ranker", name=f"ranker-v{version}")
    try:
        run["registry/mlflow_version"] = version
        run["lineage"] = lineage
        run["metrics"] = {k.replace("@", "_at_"): v for k, v in metrics.items()}
    finally:
        run.stop()
    return os.environ["NEPTUNE_DATA_DIRECTORY"]


def registered_params(ref: str, base: dict[str, Any]) -> dict[str, Any]:
    """The numeric LightGBM parameters logged with a registered version (number or alias):
    what DVC's ``fit`` and a warm start reuse instead of searching again."""
    info = version_info(ref)
    if info is None:
        raise NewsrecError(f"no registered model {ref!r} to take parameters from")
    return _numeric_overrides(_client().get_run(info["run_id"]).data.params, base)


def registered_rounds(ref: str) -> int | None:
    """The number of trees a registered version's early stopping kept (its ``best_iteration``
    metric), or None when it has none: a refit of its parameters trains exactly as many."""
    info = version_info(ref)
    if info is None:
        raise NewsrecError(f"no registered model {ref!r} to take parameters from")
    best = _client().get_run(info["run_id"]).data.metrics.get("best_iteration")
    return int(best) if best else None


def _numeric_overrides(logged: dict[str, str], base: dict[str, Any]) -> dict[str, Any]:
    """The numeric LightGBM parameters of a logged run, with params.yaml's types."""
    out: dict[str, Any] = {}
    for key, value in logged.items():
        current = base.get(key)
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            continue
        out[key] = type(current)(float(value))
    return out
