"""The diff of the whole Ningbo demo grids layer (8,499 grids), in three cases.

    .venv/bin/python benchmarks/bench_diff.py

Prints the time of ``geodata.diff.diff`` (median of 5) when the new version is: an exact copy;
every grid written back by another tool (coordinates off by up to 0.5e-7°, 5 mm or less, and
rings clockwise: all unchanged, but every shape is projected and compared); every grid moved by
2 cm (all changed: the slowest, every shape also goes through the distance and move checks).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import shapely

from _server import ROOT  # noqa: F401  (puts the project on sys.path)
from geodata.demo import build_demo
from geodata.diff import diff


def timed(old, new) -> tuple[float, dict]:
    runs, result = [], None
    for _ in range(5):
        start = time.perf_counter()
        result = diff(old, new, "grid_id")
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), result.to_dict()["counts"]


def main() -> None:
    grids = build_demo().grids
    print(f"demo: {len(grids)} grids, {shapely.get_num_coordinates(grids.geometry.values).sum():,} vertices")
    # a shift that depends on the coordinate only, so rings stay closed and shared edges shared
    noisy = shapely.reverse(shapely.transform(grids.geometry.values, lambda xy: xy + 0.5e-7 * np.sin(xy * 1e5)))
    moved = shapely.transform(grids.geometry.values, lambda xy: xy + [2.1e-7, 0])  # ~2 cm east at 29.8° N
    for name, new in [("exact copy", grids.copy()), ("written back, noise < 1 cm", grids.set_geometry(noisy)),
                      ("every grid moved 2 cm", grids.set_geometry(moved))]:
        seconds, counts = timed(grids, new)
        print(f"{name:28s} {seconds:.3f} s  {counts}")


if __name__ == "__main__":
    main()
