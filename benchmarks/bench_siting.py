"""Site recommendations on the Ningbo demo: time and covered share before/after.

    .venv/bin/python benchmarks/bench_siting.py

Each solver on its own (greedy; spopt's exact MCLP on the most populous candidates, time-limited)
and "auto", which runs both for small k and keeps the better. Prints figures; asserts nothing.
"""

from __future__ import annotations

import time

import _server  # noqa: F401  (puts the project on sys.path)


def main() -> None:
    from geodata.demo import build_demo
    from geodata.siting import recommend
    from geodata.validate import validate

    demo = build_demo()
    grids, centers = validate(demo.grids, "grids").data, validate(demo.centers, "centers").data
    runs = [("community", 10, "greedy"), ("community", 10, "mclp"), ("community", 10, "auto"),
            ("community", 20, "auto"), ("street", 10, "auto")]
    for level, k, solver in runs:
        start = time.perf_counter()
        result = recommend(grids, centers, level, k, solver=solver)
        elapsed = time.perf_counter() - start
        after = result.sites["cumulative_population"].iloc[-1] if len(result.sites) else result.covered_before
        print(f"{level:9s} k={k:2d} {solver:6s} (ran: {result.solver:6s}): {elapsed:5.2f} s; covered {result.covered_before:,} → "
              f"{after:,} of {result.population:,} ({result.covered_before / result.population:.2%} → "
              f"{after / result.population:.2%})")


if __name__ == "__main__":
    main()
