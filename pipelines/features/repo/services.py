"""Feast feature services: the feature set a model version is trained and scored with."""

from feast import FeatureService, FeatureView

from pipelines.features.catalog import FEATURE_SERVICE


def feature_services(views: dict[str, FeatureView]) -> dict[str, FeatureService]:
    return {
        FEATURE_SERVICE: FeatureService(
            name=FEATURE_SERVICE,
            features=list(views.values()),
            description="everything the LightGBM ranker reads",
        )
    }
