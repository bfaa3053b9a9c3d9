"""Module-level Feast objects, for running the `feast` CLI inside this folder.

newsrec itself builds the same objects through pipelines.features.store.definitions().
"""

from pipelines.features.store import configure_env, definitions

configure_env()
OBJECTS = definitions()
globals().update({f"obj_{i}": obj for i, obj in enumerate(OBJECTS)})
