"""Orchestration of one night: the declared stage plan, one function per stage, and the runner
that backfills and ``newsrec run-day`` use. The DAG wires the same plan's functions."""
