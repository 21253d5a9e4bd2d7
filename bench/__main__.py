"""Run every benchmark and print one table: ``python -m bench [--scale small|full]``."""

from __future__ import annotations

import argparse

from bench import ingest, report, sdk_event

BENCHMARKS = [sdk_event, ingest]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["small", "full"], default="full")
    args = parser.parse_args()
    figures = []
    for benchmark in BENCHMARKS:
        print(f"running {benchmark.__name__} ...", flush=True)
        figures.extend(benchmark.run(args.scale))
    print(report.write(figures, args.scale))


if __name__ == "__main__":
    main()
