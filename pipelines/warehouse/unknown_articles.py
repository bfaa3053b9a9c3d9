"""Articles whose metadata is unknown: named by events, missing from the source's catalogue.

Importers keep such events and add the article as a row with ``metadata_known`` false,
category and subcategory :data:`UNKNOWN_CATEGORY` and the publication
:data:`UNKNOWN_PUBLICATION_ID`. Their events count in behaviour features (reads, impressions,
click-through rates); they are never candidates for recommendation (the candidate pool's
query excludes them), so the category cap and the reasons never see their category, and a
user's taste never spends candidate slots on it. A module of its own (no imports) so that
serving can use the names without importing the importers.
"""

UNKNOWN_CATEGORY = "unknown"
UNKNOWN_PUBLICATION_ID = 900_001
