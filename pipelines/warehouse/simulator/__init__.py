"""A simulated news service that fills the warehouse with realistic, reproducible data.

Users have latent tastes over categories and favourite publications; articles have a latent
quality and lose appeal with age; an old logging policy fills slates partly from the user's
tastes and orders them by publication size, and readers examine lower positions less often.
Clicks and dwell follow from taste x quality x freshness x examination. Everything is drawn
from ``numpy`` generators keyed by (seed, day), so re-running a day gives the same rows.

The latent truth goes to the ``sim`` schema, which only the simulator and oracle evaluation
read. Options inject drift (tastes move from a date on) and faults (bad dwell, duplicates, a
thin day, unknown article ids) so that the gates downstream can be tested.

One module per concern, each importing only those above it:

- ``world``: the configuration, publications, users and articles (pure functions of the config)
- ``impressions``: latent appeal, a day's impressions and reads, their event rows and truth
- ``closed_loop``: the published lists read back from the serving tables and shown to readers
- ``behaviour``: one day of reading (sessions, the logging policy, examination, faults)
- ``writer``: writing to the warehouse (``seed``, ``simulate_day``, replacing a day)

Callers use this package's names (``simulator.seed(...)``); they are the modules' own objects.
"""

from pipelines.warehouse.simulator.behaviour import inject_faults, simulate_events
from pipelines.warehouse.simulator.closed_loop import REC_SURFACE, LiveLists, load_live_lists, shown_batch
from pipelines.warehouse.simulator.impressions import ShowableArticles
from pipelines.warehouse.simulator.world import (
    ARTICLE_ID_STRIDE,
    CATEGORIES,
    CATEGORY_POPULARITY,
    EVENT_ID_STRIDE,
    FAULTS,
    REGION_LANGUAGES,
    REGIONS,
    SURFACES,
    UNKNOWN_ARTICLE_BASE,
    Publications,
    SimConfig,
    Users,
    concat_users,
    day_number,
    drifted_taste,
    make_articles,
    make_base_users,
    make_new_users,
    make_publications,
    region_category_bias,
    users_on,
)
from pipelines.warehouse.simulator.writer import DayResult, load_config, seed, simulate_day

__all__ = [
    "ARTICLE_ID_STRIDE",
    "CATEGORIES",
    "CATEGORY_POPULARITY",
    "EVENT_ID_STRIDE",
    "FAULTS",
    "REC_SURFACE",
    "REGIONS",
    "REGION_LANGUAGES",
    "SURFACES",
    "UNKNOWN_ARTICLE_BASE",
    "DayResult",
    "LiveLists",
    "Publications",
    "ShowableArticles",
    "SimConfig",
    "Users",
    "concat_users",
    "day_number",
    "drifted_taste",
    "inject_faults",
    "load_config",
    "load_live_lists",
    "make_articles",
    "make_base_users",
    "make_new_users",
    "make_publications",
    "region_category_bias",
    "seed",
    "shown_batch",
    "simulate_day",
    "simulate_events",
    "users_on",
]
