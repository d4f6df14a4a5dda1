"""Benchmarks for WRM; run from the repo root, e.g. `python -m bench.ingest --seconds 30`."""
