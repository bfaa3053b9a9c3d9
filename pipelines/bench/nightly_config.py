"""What the nightly bench builds and with which budget: the world's sizes (seed scale by
default), the training budget, the reader load, profiling, and the night under test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pipelines.core.errors import ConfigError

SEED_SCALE = {"users": 521_000, "articles_per_day": 144_000, "days": 7}


@dataclass
class BenchConfig:
    users: int = SEED_SCALE["users"]
    articles_per_day: int = SEED_SCALE["articles_per_day"]
    days: int = SEED_SCALE["days"]
    trials: int = 0  # the small fixed training budget: no search, params.yaml's parameters
    train_days: int = 2
    hpo_minutes: float = 5.0
    reader_seconds: int = 15
    profile: bool = False
    reuse_world: bool = False  # keep a world already built with the same sizes (developer loop)
    serial: bool = False  # the stages one at a time instead of as the DAG schedules them

    def validate(self) -> None:
        """Training reads the features of the day before its first day, then trains on
        ``train_days`` days and validates and tests on the last two."""
        if self.days < self.train_days + 3:
            raise ConfigError(
                f"--days {self.days} is too short for --train-days {self.train_days}: "
                f"needs at least {self.train_days + 3} (features of a day before training, validation and test days)"
            )

    @property
    def day(self) -> date:
        """The night under test: the last seeded day (yesterday)."""
        return datetime.now(UTC).date() - timedelta(days=1)

    @property
    def start(self) -> date:
        return self.day - timedelta(days=self.days - 1)
