"""Threadline benchmarks: `python -m bench` (or `make bench`) prints ratios against same-run baselines."""
