"""CQL2 filters and sortby at province scale: the embedded store's SQL and the frames' masks.

    .venv/bin/python benchmarks/bench_filters.py              # ten copies of the Ningbo demo (84,990 grids)
    .venv/bin/python benchmarks/bench_filters.py --copies 1   # the demo (8,499 grids)

For each filter QGIS or GDAL sends (=, LIKE, IN, BETWEEN, CASEI, S_INTERSECTS with a polygon around a
district's centre, an AND of both), the time of ``store.query(where=…, limit=100)`` on the SQLite store
and on PostGIS (a page and numberMatched), and of ``FeatureSet.select`` on the layer's frame (how derived
collections are filtered); the median of ``--runs`` runs.  numberMatched is compared across the three.
PostGIS: ``--database-url``, else a throwaway cluster (as ``bench_store.py``); left out, saying why, when
neither works.  Wall
clock on a shared machine: the load average is printed.  Prints figures; asserts nothing.

Measured (84,990 grids, load average about 7 on 2 cores): a filter that scans the layer takes 0.35-0.75 s
in SQLite, 0.16-0.52 s in PostGIS, 7-130 ms on the frame; S_INTERSECTS 1.6 ms (SQLite, the R*Tree first)
and 7.5 ms (PostGIS, GiST); sortby over the whole layer 1.1 s, 1.5 s and 0.26 s; the counts agree.  Most of the scan is reading
``props``, stored after the feature's long GeoJSON text in each row (reading ``hash``, before it, took a
quarter of the time): the store's schema, not the filter's SQL, sets that cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from _demo10 import scaled_demo
from _server import ROOT
from bench_store import Postgres

sys.path.insert(0, str(ROOT))

from geodata import cql  # noqa: E402
from geodata.query import FeatureSet, Query  # noqa: E402
from geodata.schema import LAYERS  # noqa: E402
from geodata.store import open_store  # noqa: E402


def timed(run, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("GRIDMAP_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    grids = scaled_demo(args.copies).grids
    layer = LAYERS["grids"]
    district = grids["district"].value_counts().index[0]
    centre = grids[grids["district"] == district].geometry.union_all().centroid
    area = centre.buffer(0.02, quad_segs=4)
    filters = {
        "=": f"district = '{district}'",
        "LIKE": f"name LIKE '{grids['name'].iloc[0][:2]}%'",
        "IN": f"district IN ('{district}', '{grids['district'].iloc[-1]}')",
        "BETWEEN": "population BETWEEN 500 AND 1500",
        "CASEI": "CASEI(grid_type) = casei('INDUSTRIAL_PARK')",
        "S_INTERSECTS": f"S_INTERSECTS(geometry, {area.wkt})",
        "AND": f"S_INTERSECTS(geometry, {area.wkt}) AND population > 1000",
    }
    print(f"{len(grids):,} grids; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="gridmap-bench-filters-") as tmp:
        stores = {"SQLite": open_store(os.path.join(tmp, "data"))}
        pg = Postgres(args.database_url, __import__("pathlib").Path(tmp))
        try:
            pg.start()
            stores["PostGIS"] = open_store(pg.database("gridmap_bench_filters"))
        except Exception as e:  # noqa: BLE001 - a benchmark says why a column is missing and goes on
            print(f"PostGIS left out: {e}")
        try:
            for store in stores.values():
                store.write("grids", grids, author="bench")
            frame = FeatureSet(stores["SQLite"].read("grids"), layer)
            heads = "".join(f"{name + ' ms':>12}" for name in stores)
            print(f"{'filter':<14}{'matched':>9}{heads}{'frame ms':>10}")
            for label, text in [*filters.items(), ("sortby", None)]:
                if text is None:
                    kwargs = {"sortby": cql.parse_sortby("-population,name", layer, frame.columns)}
                else:
                    kwargs = {"where": cql.parse(text, "cql2-text", None, layer, frame.columns)}
                query = Query(**kwargs)
                row, matched = [], set()
                for store in stores.values():
                    ms, page = timed(lambda: store.query("grids", limit=100, **kwargs), args.runs)
                    row.append(ms)
                    matched.add(page.number_matched)
                frame_ms, chosen = timed(lambda: frame.select(query), args.runs)
                matched.add(len(chosen))
                same = "" if len(matched) == 1 else f"  (differ: {sorted(matched)})"
                print(f"{label:<14}{len(chosen):>9,}" + "".join(f"{ms:>12.1f}" for ms in row) + f"{frame_ms:>10.1f}"
                      + same)
        finally:
            for store in stores.values():
                store.close()
            pg.close()

if __name__ == "__main__":
    main()
