"""Building the demos: time, counts, and the whole first start's install into an empty store.

    .venv/bin/python benchmarks/bench_demo.py [ningbo] [zhejiang]

For each demo: the build (``geodata.demo``), then ``install_if_empty`` into an empty
embedded store in a temporary directory (the build again, validation of every layer,
the three writes), which is what the first start with ``GRIDMAP_DEMO`` does before
serving.  The goal for zhejiang is a build within 60 s on a 2-core machine.  Prints
figures; asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time

import _server  # noqa: F401  (puts the project on sys.path)


def main(which: list[str]) -> None:
    from geodata.demo import DEMOS, install_if_empty
    from geodata.store import open_store

    for name in which or list(DEMOS):
        build = DEMOS[name]
        start = time.perf_counter()
        demo = build()
        built = time.perf_counter() - start
        grids, centers = demo.grids, demo.centers
        units = {level: len(grids[keys].drop_duplicates()) for level, keys in (
            ("districts", ["district"]), ("streets", ["district", "street"]),
            ("communities", ["district", "street", "community"]))}
        cities = grids.city.nunique() if "city" in grids else 1
        levels = centers.level.value_counts()
        print(f"{name}: built in {built:.1f} s: {cities} cities, "
              + ", ".join(f"{n:,} {level}" for level, n in units.items())
              + f", {len(grids):,} grids, {len(centers):,} centres "
              f"({levels.get('district', 0)} district, {levels.get('street', 0):,} street, "
              f"{levels.get('community', 0):,} community), {grids.population.sum():,} residents")
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(tmp)
            start = time.perf_counter()
            install_if_empty(store, name)
            print(f"{name}: first start's install (build, validate, store) in {time.perf_counter() - start:.1f} s")
            store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
