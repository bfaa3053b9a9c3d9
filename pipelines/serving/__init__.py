"""Serving: candidate generation, top-k selection with reasons, and atomic batch publishing.

The ranking loop in between (features -> model scores) lives with the model code; these
modules take and return plain frames so each step can be tested on its own.
"""
