"""Where the reader's database is and its knobs (``serving.reader`` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.core.config import known_fields, params
from pipelines.core.errors import ConfigError

READER_ROLE = "newsrec_reader"


class ReaderEnv(BaseSettings):
    """``NEWSREC_READER_DATABASE_URL``: a full libpq URL for the reader (e.g. with the
    read-only role's password on a server that does not trust local connections)."""

    model_config = SettingsConfigDict(env_prefix="NEWSREC_READER_", extra="ignore")

    database_url: str | None = None


@dataclass(frozen=True)
class ReaderParams:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    default_limit: int = 10
    max_limit: int = 100
    key_cache_seconds: float = 5.0
    pool_min: int = 1
    pool_max: int = 10
    list_statements: int = 1
    list_batch_max: int = 64
    statement_timeout_ms: int = 2000
    export_default_users: int = 10_000
    export_max_users: int = 100_000
    export_fetch_rows: int = 5_000
    warm_explanations: bool = True

    @classmethod
    def from_params(cls) -> ReaderParams:
        made = cls(**known_fields(cls, params("serving").get("reader", {})))
        if not 1 <= made.default_limit <= made.max_limit <= 100:
            raise ConfigError("serving.reader: need 1 <= default_limit <= max_limit <= 100")
        if not 1 <= made.workers <= 64:
            raise ConfigError("serving.reader: need 1 <= workers <= 64")
        if not 1 <= made.list_statements <= made.pool_max or not 1 <= made.list_batch_max <= 1000:
            raise ConfigError("serving.reader: need 1 <= list_statements <= pool_max and 1 <= list_batch_max <= 1000")
        if not 1 <= made.export_default_users <= made.export_max_users or made.export_fetch_rows < 1:
            raise ConfigError(
                "serving.reader: need 1 <= export_default_users <= export_max_users and export_fetch_rows >= 1"
            )
        return made


def as_reader(url: str) -> str:
    """The same server and database as ``url``, logged in as the read-only role (no
    password: the embedded server trusts local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{READER_ROLE}@{host}"))


def reader_database_url() -> str:
    """``NEWSREC_READER_DATABASE_URL`` if set, else the main database URL as the reader role."""
    explicit = ReaderEnv().database_url
    if explicit:
        if not urlsplit(explicit).scheme.startswith("postgres"):
            raise ConfigError("NEWSREC_READER_DATABASE_URL must be a postgresql:// URL")
        return explicit
    from pipelines.core import db

    return as_reader(db.database_url())
