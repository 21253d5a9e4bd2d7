"""Run every benchmark and print one table: ``python -m bench [--scale small|full]``."""

from __future__ import annotations

import argparse
import time
import traceback

from bench import dataset, ingest, memory, overload, queries, report, sdk_event

BENCHMARKS = [sdk_event, ingest, queries, memory, overload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=list(dataset.SCALES), default="full")
    parser.add_argument(
        "--only",
        action="append",
        choices=[benchmark.__name__.split(".")[-1] for benchmark in BENCHMARKS],
        help="run only this benchmark (repeatable); bench/results.md is then left as it is",
    )
    args = parser.parse_args()
    figures = []
    started = time.perf_counter()
    for benchmark in BENCHMARKS:
        if args.only and benchmark.__name__.split(".")[-1] not in args.only:
            continue
        print(f"running {benchmark.__name__} ...", flush=True)
        began = time.perf_counter()
        try:
            figures.extend(benchmark.run(args.scale))
        except Exception as error:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            reason = (str(error).splitlines() or [""])[0][:100]
            figures.append(
                report.Figure.absolute(
                    f"{benchmark.__name__} (did not finish)",
                    f"error: {type(error).__name__}: {reason}",
                    "runs",
                    False,
                )
            )
        print(f"  {benchmark.__name__} took {time.perf_counter() - began:.0f} s", flush=True)
    elapsed = time.perf_counter() - started
    if args.only:
        print(report.table(figures))
    else:
        print(report.write(figures, args.scale, elapsed))


if __name__ == "__main__":
    main()
