"""Serving: candidates, batch scoring with the champion (and experiment arms), top-k selection
with reasons, atomic batch publishing, exports and on-demand explanations."""
