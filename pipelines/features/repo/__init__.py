"""The Feast repository: entities, sources, views and services in files of their own."""
