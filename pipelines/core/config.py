"""One settings object read from the environment (``NEWSREC_*``) plus ``params.yaml``.

Places and credentials come from the environment; model and pipeline knobs live in
``params.yaml`` so that DVC, the CLI and Airflow read the same values.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSREC_", extra="ignore")

    # A libpq URL of the newsrec database on an existing server. Unset: embedded pgserver.
    database_url: str | None = None
    # Folder for local state: the embedded database, feature files, reports, artifacts.
    home: Path = Field(default=PROJECT_ROOT / ".newsrec")
    params_file: Path = Field(default=PROJECT_ROOT / "params.yaml")
    sql_dir: Path = Field(default=PROJECT_ROOT / "sql")
    # Name of the main database when the embedded server is used.
    database_name: str = "newsrec"

    # Beam runner for the feature ETL; FnApiRunner is the direct runner's in-process engine
    # (it never tries to download the Prism runner). Any Beam runner name works here.
    beam_runner: str = "FnApiRunner"
    # User-id ranges the ETL reads in parallel (one Postgres COPY each). Unset: one range per
    # ETL_USERS_PER_SHARD users, at most 8 (each range costs a query and a pass of pandas
    # work per view: a small warehouse built in 8 ranges paid 2.5x the CPU of one range).
    etl_shards: int | None = Field(default=None, ge=1, le=1024)
    # A dask.distributed scheduler (``tcp://host:8786``): the ETL (Beam's DaskRunner), training
    # (LightGBM's DaskLGBMRanker) and batch scoring (user partitions) run on that cluster.
    # Unset: in-process.
    dask_address: str | None = None
    # Where people open the MLflow UI (the plugin's training link goes to the run's own version).
    mlflow_ui_url: str = "http://localhost:5000"

    # Where alerts go (pipelines/core/alerts.py): one or more Apprise URLs separated by spaces
    # or commas, e.g. ``mailtos://USER:PASSWORD@smtp.example.org?to=oncall@example.org`` or
    # ``slack://...``. Unset: alerts are only stored in ops.alerts and logged (off by default).
    alert_url: str | None = None
    # Base URL under which on-call opens ``reports/`` (e.g. the Airflow plugin's
    # ``https://airflow.example.org/newsrec/reports``); unset: alerts link the file itself.
    reports_url: str | None = None

    @property
    def pg_dir(self) -> Path:
        return self.home / "pg"

    @property
    def features_dir(self) -> Path:
        """Feature partitions (the Feast offline store): ``<view>/<YYYY-MM-DD>.parquet``."""
        return self.home / "features"

    @property
    def reports_dir(self) -> Path:
        """HTML and JSON reports of gates and runs: ``<kind>/<YYYY-MM-DD>/...``."""
        return self.home / "reports"

    @property
    def artifacts_dir(self) -> Path:
        """Model artifacts (MLflow artifact root by default)."""
        return self.home / "artifacts"

    @property
    def serving_models_dir(self) -> Path:
        """Model files exported at publish time for the reader's explanations: ``<version>/``."""
        return self.home / "serving" / "models"

    @property
    def feast_dir(self) -> Path:
        """Feast's file registry."""
        return self.home / "feast"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


@lru_cache(maxsize=4)
def _load_params(path: str) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def params(section: str | None = None) -> dict[str, Any]:
    """The parsed ``params.yaml`` (or one section of it)."""
    data = _load_params(str(get_settings().params_file))
    return data if section is None else dict(data.get(section, {}))


def known_fields(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    """The entries of a params.yaml section that are fields of dataclass ``cls``."""
    return {k: v for k, v in (raw or {}).items() if k in cls.__dataclass_fields__}


def reset_caches() -> None:
    """Forget cached settings and params (tests change the environment between cases)."""
    get_settings.cache_clear()
    _load_params.cache_clear()
