"""What serving in another CRS and as one geometry type costs (OGC API - Features Part 2, issue #17).

Prints, for the demo copied ten times side by side (84,990 grids, a stand-in for the province):
the whole layer's feature texts served as stored versus promoted to MultiPolygon (the GeoJSON
download's extra work), and a page of 1,000 grids in CRS84 versus EPSG:4549 and EPSG:4490 (the
items route's extra work).  Best of 5 runs each.

    /work/main/.venv/bin/python benchmarks/bench_crs.py
"""

from __future__ import annotations

import time

from _demo10 import scaled_demo

from geodata import geojson
from geodata.crs import output_crs
from geodata.schema import GRIDS


def best(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    grids = scaled_demo(10).grids
    texts = geojson.feature_strings(grids, id_field="grid_id")
    print(f"grids: {len(texts):,} ({(grids.geom_type == 'MultiPolygon').sum():,} stored as MultiPolygon)")
    whole = best(lambda: geojson.served(texts, GRIDS))
    print(f"whole layer promoted to MultiPolygon: {whole * 1000:.0f} ms "
          f"({whole / len(texts) * 1e6:.2f} µs a feature)")
    page = texts[:1000]
    plain = best(lambda: geojson.served(page, GRIDS))
    print(f"1,000-grid page, CRS84: {plain * 1000:.1f} ms")
    for code in ("EPSG:4549", "EPSG:4490", "EPSG:3857"):
        uri = output_crs(code)
        geojson.served(page[:1], GRIDS, uri)  # the transformer, made once a process
        took = best(lambda: geojson.served(page, GRIDS, uri))
        print(f"1,000-grid page, {code}: {took * 1000:.1f} ms ({took / plain:.0f}x CRS84)")


if __name__ == "__main__":
    main()
