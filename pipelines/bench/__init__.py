"""Benchmarks: measured against what this machine can do, results written to files."""
