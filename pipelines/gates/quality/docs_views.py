"""Data Docs page views that share one Jinja environment per process.

GE's views build a new Jinja ``Environment`` for every Data Docs build, so every build
compiles the same templates again (~1 s per stage on a tiny day). These subclasses keep the
first environment of their kind and reuse it: the templates, filters and output are GE's.
The Data Docs site config names them (:func:`pipelines.gates.quality.validation.context`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView


class _SharedEnvironment:
    _environments: ClassVar[dict[tuple[Any, ...], Any]] = {}

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        key = (type(self), custom_styles_directory, custom_views_directory)
        environment = self._environments.get(key)
        if environment is None:
            super().__init__(custom_styles_directory, custom_views_directory)  # type: ignore[call-arg]
            self._environments[key] = self.env
        else:
            self.custom_styles_directory = custom_styles_directory
            self.custom_views_directory = custom_views_directory
            self.env = environment


class SharedPageView(_SharedEnvironment, DefaultJinjaPageView):
    """GE's page view (suite and validation pages)."""


class SharedIndexPageView(_SharedEnvironment, DefaultJinjaIndexPageView):
    """GE's index page view."""
