"""Batch scoring with the champion. Every model is checked against the current feature
signature before it scores anything."""

from __future__ import annotations

from pipelines import registry
from pipelines.features.matrix import check_signature


def load_for_scoring(ref: str = registry.CHAMPION) -> registry.LoadedModel:
    """Load a model for scoring; refuses one whose signature differs from today's features."""
    model = registry.load(ref)
    check_signature(model.spec)
    return model
