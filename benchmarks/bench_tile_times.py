"""Each tile of bench_map_tiles.py's path, timed server-side: the Flask app in process (its test client, so
no network, no browser), on the province demo's data directory, by layer and zoom.

    .venv/bin/python benchmarks/bench_tile_times.py [--data-dir DIR] [--first-zoom 7] [--top 15] [--profile]

The app is made and warmed up as a worker is (``server.__main__.warm_up``: the analysis, the tile sources,
and whatever low-zoom tiles it seeds), then every tile of the path (bench_map_tiles.path_tiles, the layers
the map shows at start) is asked for once (**cold**: not asked for before; what the warm-up seeded is
already cut) and once more (**warm**), each request's thread CPU time taken.  Printed: per layer and zoom the
cold requests' count, sum, p95 and max CPU ms, the ``--top`` slowest cold tiles, and warm p50 / p95.
``--profile``: cProfile of the warm pass, the top functions by own time.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import time

import numpy as np

import _server  # noqa: F401  (puts the project on sys.path)
from bench_map_tiles import CACHE, LAYERS, path_tiles


def timed(client, url: str) -> tuple[float, float, int]:
    start, cpu = time.perf_counter(), time.thread_time()
    response = client.get(url, headers={"Accept-Encoding": "gzip"})
    took = (time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000
    assert response.status_code in (200, 204), (url, response.status_code)
    return (*took, len(response.data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(CACHE / "zhejiang-data"))
    parser.add_argument("--demo", default="zhejiang", choices=["zhejiang", "ningbo"])
    parser.add_argument("--first-zoom", type=int, default=7, help="the map's zoom at its first view")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ["GRIDMAP_BASEMAP"] = "none"
    from server import create_app
    from server.__main__ import warm_up

    app = create_app({"DATA_DIR": args.data_dir})
    start = time.perf_counter()
    warm_up(app)
    print(f"warm-up (analysis from the disk cache, tile sources, seeding): {time.perf_counter() - start:.1f} s; "
          f"load average {' / '.join(f'{v:.1f}' for v in os.getloadavg())}")
    client = app.test_client()
    jobs = [(layer, tile) for tile in path_tiles(args.demo, args.first_zoom) for layer in LAYERS]
    urls = [f"/api/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}" for layer, (z, x, y) in jobs]
    cold = [timed(client, url) for url in urls]
    by = collections.defaultdict(list)
    for (layer, (z, _, _)), (_, cpu, _) in zip(jobs, cold):
        by[layer, z].append(cpu)
    print(f"\ncold, {len(urls)} requests, CPU ms a request: mean {np.mean([c[1] for c in cold]):.1f}, "
          f"p95 {np.percentile([c[1] for c in cold], 95):.0f}, max {max(c[1] for c in cold):.0f}; "
          f"wall p95 {np.percentile([c[0] for c in cold], 95):.0f} ms")
    print(f"{'layer':12} {'z':>3} {'n':>4} {'sum':>7} {'p95':>6} {'max':>6}")
    for (layer, z), cpus in sorted(by.items()):
        print(f"{layer:12} {z:3d} {len(cpus):4d} {sum(cpus):7.0f} {np.percentile(cpus, 95):6.0f} {max(cpus):6.0f}")
    print(f"\nslowest cold tiles (CPU ms, bytes as sent):")
    for i in np.argsort([-c[1] for c in cold])[:args.top]:
        print(f"  {urls[i].split('/collections/')[1]}: {cold[i][1]:.0f} ms, {cold[i][2] / 1024:.0f} KB")
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    warm = [timed(client, url) for url in urls]
    if profiler:
        profiler.disable()
    cpus = [w[1] for w in warm]
    print(f"\nwarm, CPU ms a request: mean {np.mean(cpus):.2f}, p50 {np.percentile(cpus, 50):.2f}, "
          f"p95 {np.percentile(cpus, 95):.2f}, max {max(cpus):.1f}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
