"""Vector tiles cut in process (geodata/tiles.py): cold time and size per zoom, on the Ningbo demo and the
province demo (or ``--copies`` of Ningbo side by side).

    .venv/bin/python benchmarks/bench_tiles.py [--demo zhejiang|copies] [--copies 10]

For each layer drawn from tiles and each zoom from the layer's first to 16, the tiles of a
square of ``--tiles`` × ``--tiles`` around the busiest place (the most grids per tile) are cut
cold (each once, nothing cached), and p50 / p95 / max time and the largest tile are printed,
beside the issue's targets (≤ 250 ms p95 cold; no tile over 500 KB).  The time to make a layer
ready for tiles (projected, indexed) is printed first.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import _server  # noqa: F401  (puts the project on sys.path)

ZOOMS = range(8, 17)


def busiest_tile(gdf, z: int) -> tuple[int, int]:
    from geodata import tiles

    points = gdf.geometry.representative_point()
    cells = [tiles.tile_of(p.x, p.y, z) for p in points]
    values, counts = np.unique(np.array(cells), axis=0, return_counts=True)
    col, row = values[counts.argmax()]
    return int(col), int(row)


def layers(demo: str, copies: int):
    from geodata.catalog import Catalog
    from geodata.store import open_store
    import tempfile

    if demo == "copies":
        from _demo10 import scaled_demo
        data = scaled_demo(copies)
    elif demo == "zhejiang":
        from geodata.demo import build_province_demo
        data = build_province_demo()
    else:
        from geodata.demo import build_demo
        data = build_demo()
    from geodata.validate import validate

    store = open_store(tempfile.mkdtemp(prefix="bench-tiles-"))
    for name in ("districts", "grids", "centers"):
        store.write(name, validate(getattr(data, name), name).data, author="bench")
    catalog = Catalog(store)
    catalog.analysis()
    return {name: catalog.get(name).features.gdf for name in ("coverage", "gaps", "communities", "streets",
                                                                 "districts", "centers")}


def main() -> None:
    from geodata import tiles

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", choices=["ningbo", "zhejiang", "copies"], default="ningbo")
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--tiles", type=int, default=3, help="a square of N × N tiles at each zoom (default 3)")
    args = parser.parse_args()
    frames = layers(args.demo, args.copies)
    print(f"demo {args.demo}: {len(frames['coverage']):,} grids; targets: p95 ≤ 250 ms cold, no tile over 500 KB")
    for name, gdf in frames.items():
        start = time.perf_counter()
        source = tiles.TileSource.of(name, gdf, list(gdf.columns))
        print(f"\n{name}: {len(gdf):,} features, ready for tiles in {time.perf_counter() - start:.2f} s")
        for z in ZOOMS:
            if z < tiles.MIN_ZOOM.get(name, 0):
                continue
            col, row = busiest_tile(gdf, z)
            times, sizes = [], []
            half = args.tiles // 2
            for x in range(col - half, col - half + args.tiles):
                for y in range(row - half, row - half + args.tiles):
                    start = time.perf_counter()
                    data = source.tile(z, x, y) or b""
                    times.append(time.perf_counter() - start)
                    sizes.append(len(data))
            print(f"  z{z:2d}: p50 {statistics.median(times) * 1000:6.1f} ms  p95 "
                  f"{np.percentile(times, 95) * 1000:6.1f} ms  max {max(times) * 1000:6.1f} ms  "
                  f"largest {max(sizes) / 1024:6.1f} KB")


if __name__ == "__main__":
    main()
