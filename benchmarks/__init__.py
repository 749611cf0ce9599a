"""Benchmarks: `make bench` (python -m benchmarks). Not tests: nothing here asserts timings."""
