"""The MIND news-recommendation format (news.tsv + behaviors.tsv): import and export.

``parse`` reads and validates the two files, ``tables`` turns them into warehouse rows,
``load`` imports them in one transaction, and ``export`` writes a simulated world in the same
format (with the simulator's truth beside it) so the import can be tested without outside data.
"""

from pipelines.warehouse.mind.load import MIND_PROFILE, MindImport, import_mind
from pipelines.warehouse.mind.parse import TIME_FORMAT, parse_behaviors, parse_news
from pipelines.warehouse.mind.tables import MIND_PUBLICATION_ID, build_tables
from pipelines.warehouse.unknown_articles import UNKNOWN_CATEGORY, UNKNOWN_PUBLICATION_ID

__all__ = [
    "MIND_PROFILE",
    "MIND_PUBLICATION_ID",
    "TIME_FORMAT",
    "UNKNOWN_CATEGORY",
    "UNKNOWN_PUBLICATION_ID",
    "MindImport",
    "build_tables",
    "import_mind",
    "parse_behaviors",
    "parse_news",
]
