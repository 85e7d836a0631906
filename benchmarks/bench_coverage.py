"""Coverage analysis on the Ningbo demo, against the naive geopandas idiom, in one run.

    .venv/bin/python benchmarks/bench_coverage.py

Prints: the whole analysis cold (all four gap kinds + summaries), the per-grid
coverage part next to ``grids.intersection(union_of_all_catchments).area / grids.area``
with the ratio, and warm summary request latency on the real server.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import requests
import shapely

from _server import demo_data_dir, running_server


def main() -> None:
    from geodata.coverage import Params, analyse, catchments, grid_coverage
    from geodata.crs import metric_crs
    from geodata.demo import build_demo
    from geodata.validate import validate

    demo = build_demo()
    grids, centers, districts = (validate(getattr(demo, n), n).data for n in ("grids", "centers", "districts"))
    print(f"demo: {len(grids)} grids, {len(centers)} centres, {len(districts)} districts")

    runs = []
    for _ in range(5):
        start = time.perf_counter()
        analysis = analyse(grids, centers, districts)
        runs.append(time.perf_counter() - start)
    counts = analysis.gaps["kind"].value_counts().to_dict()
    print(f"whole analysis, cold: first {runs[0]:.3f} s, median of 5 {statistics.median(runs):.3f} s  "
          f"(gaps: {counts})")

    crs = metric_crs(grids)
    grid_geoms = grids.geometry.to_crs(crs).values
    discs = catchments(centers.to_crs(crs), Params())

    start = time.perf_counter()
    fast, _ = grid_coverage(grid_geoms, discs)
    fast_s = time.perf_counter() - start

    start = time.perf_counter()
    union = shapely.union_all(discs)
    naive = shapely.area(shapely.intersection(grid_geoms, union)) / shapely.area(grid_geoms)
    naive_s = time.perf_counter() - start
    print(f"per-grid coverage: gridmap {fast_s:.3f} s, naive intersection with the union {naive_s:.3f} s, "
          f"ratio {naive_s / fast_s:.1f}x (largest difference in ratio {np.abs(fast - naive).max():.2e})")

    # what-ifs are open to anyone here (GRIDMAP_PUBLIC_WHATIF): the timing is of the work, not of signing in
    with demo_data_dir() as data_dir, running_server(data_dir, PUBLIC_WHATIF=1) as (base, up):
        session = requests.Session()
        url = f"{base}/api/summary?level=community"
        for _ in range(4):  # every worker has it cached
            session.get(url).raise_for_status()
        times = []
        for _ in range(50):
            t = time.perf_counter()
            session.get(url).raise_for_status()
            times.append(time.perf_counter() - t)
        print(f"warm /api/summary?level=community: median of 50 {statistics.median(times) * 1000:.1f} ms "
              f"(server up after {up:.1f} s, analysis computed before it answered)")
        cold = time.perf_counter()
        session.get(f"{base}/api/summary?level=district&radius_community_m=1500").raise_for_status()
        print(f"what-if summary (radius_community_m=1500), computed on request as a job: "
              f"{time.perf_counter() - cold:.3f} s")


if __name__ == "__main__":
    main()
