"""Profile one query figure: ``python -m bench.profile [--scale small|full] [--figure overview]``.

Runs the figure's collector function (what the API handler calls, minus HTTP) on the generated data
set under pyinstrument, prints the profile and writes it as HTML under ``.threadline/``; then times
each SQL statement of the figure on its own, and its planning alone (``EXPLAIN PLAN``: parse, analyse
and plan, no execution), which tells what the store spends reading events from what it spends on
the statement itself. The numbers are what bench/README.md's "what bounds each figure" rests on.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from pyinstrument import Profiler

from bench import dataset
from threadline.collector import cursors, schema
from threadline.collector.state import forecast, overview, process_map, rules, transactions
from threadline.collector.storage import Store
from threadline.collector.workflows import load

FIGURES = ("lookup", "stuck", "overview", "map")


def _median_ms(call: Callable[[], Any], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        begin = time.perf_counter()
        call()
        samples.append(time.perf_counter() - begin)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=list(dataset.SCALES), default="small")
    parser.add_argument("--figure", choices=FIGURES, default="overview")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    data = dataset.prepare(args.scale)
    workflows = load(dataset.WORKFLOWS)
    store = Store(data.dsn).open()
    tenant, as_of = dataset.TENANT, data.anchor
    summary_parameters = rules.summary_parameters(workflows, tenant, as_of)
    everything = {"workflow": "", "since": schema.EARLIEST, "until": schema.LATEST}
    key = data.keys[0]
    found = store.rows(transactions.RESOLVE_KEY, {"tenant": tenant, "key": key})[0]

    calls: dict[str, Callable[[], Any]] = {
        "lookup": lambda: transactions.find(store, workflows, tenant, key, as_of),
        "stuck": lambda: transactions.page(
            store, workflows, tenant, transactions.ListFilters(states=("stuck",)), as_of, 50, None
        ),
        "overview": lambda: overview.overview(store, workflows, tenant, "", None, None, as_of),
        "map": lambda: process_map.process_map(
            store, tenant, "quote-to-cash", workflows.get("quote-to-cash"), None, None
        ),
    }
    list_parameters = {
        **summary_parameters,
        "workflow": "",
        "states": ["stuck"],
        "system": "",
        "breached": -1,
        "with_violations": False,
        "attention": False,
        "with_mismatches": False,
        "with_duplicates": False,
        "since": schema.EARLIEST,
        "until": schema.LATEST,
        "after_time": cursors.FIRST_PAGE[0],
        "after_id": cursors.FIRST_PAGE[1],
        "limit": 51,
        "predicted_breach": False,
        **forecast.forecast_parameters(None),
    }
    map_parameters = {"tenant": tenant, **everything, "workflow": "quote-to-cash"}
    one = {
        **summary_parameters,
        "transaction": found["found"],
        "keys": found["keys"],
        "announced": found["announced"],
    }
    statements: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "lookup": [
            ("resolve key", transactions.RESOLVE_KEY, {"tenant": tenant, "key": key}),
            ("state, events, aliases", transactions.ONE.replace("{summary}", rules.summary_sql(True)), one),
        ],
        "stuck": [
            (
                "list",
                transactions.LIST.format(summary=rules.summary_sql(open_only=True)).replace(
                    "{in_slice}", "1"
                ),
                list_parameters,
            )
        ],
        "overview": [
            (
                "figures",
                overview.FIGURES.format(
                    group="workflow",
                    source=rules.summary_sql(),
                    in_range=overview.in_range(),
                    amount_at_risk=rules.AMOUNT_AT_RISK,
                ),
                {**summary_parameters, **everything},
            )
        ],
        "map": [
            (
                name,
                getattr(process_map, name)
                .format(traces=process_map.STORED_TRACES)
                .replace("{in_slice}", "1"),
                map_parameters,
            )
            for name in ("VARIANTS", "EDGES")
        ],
    }

    call = calls[args.figure]
    call()  # warm: first-query costs are not the figure's
    profiler = Profiler(interval=0.001)
    profiler.start()
    for _ in range(args.rounds):
        call()
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    target = dataset.CACHE_ROOT / f"bench-profile-{args.figure}-{args.scale}.html"
    target.write_text(profiler.output_html())
    print(f"profile written to {target}\n")

    print(f"{'statement':<28} {'run (median)':>14} {'plan only':>11}")
    for name, sql, parameters in statements[args.figure]:
        run_ms = _median_ms(partial(store.query, sql, parameters), args.rounds)
        plan_ms = _median_ms(partial(store.query, "EXPLAIN PLAN " + sql, parameters), args.rounds)
        print(f"{name:<28} {run_ms:>11,.0f} ms {plan_ms:>8,.0f} ms")
    store.close()


if __name__ == "__main__":
    main()
