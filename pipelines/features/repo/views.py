"""Feast feature views, generated from the one feature table in definitions.py."""

from feast import FeatureView, Field, FileSource
from feast.types import Float32, Int64, String

from pipelines.features.catalog import VIEWS, view_features
from pipelines.features.repo.entities import ENTITIES

_TYPES = {"int64": Int64, "float32": Float32, "string": String}


def feature_views(sources: dict[str, FileSource]) -> dict[str, FeatureView]:
    return {
        name: FeatureView(
            name=name,
            entities=[ENTITIES[e] for e in view.entities],
            ttl=view.ttl,
            online=view.online,
            source=sources[name],
            description=view.doc,
            schema=[Field(name=f.name, dtype=_TYPES[f.dtype], description=f.doc) for f in view_features(name)],
        )
        for name, view in VIEWS.items()
    }
