"""Benchmarks for photosite; run them all with `python -m bench`."""
