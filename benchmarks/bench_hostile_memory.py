"""Memory a worker spends on hostile requests: a 100 MiB JSON body, and 300 different 10,000-feature pages.

    .venv/bin/python benchmarks/bench_hostile_memory.py [--pages 300] [--cache-mb 256]

In one process (the app through WSGI, no server), on 10,000 synthetic grids:

- a 100 MiB body to ``/api/whatif`` is streamed lazily (the client holds none of it):
  prints the status, the bytes the app read and the worker's RSS growth;
- ``--pages`` anonymous items pages of ``limit=10000``, each a different URL: prints
  the RSS growth and the bytes the items-page cache keeps (GRIDMAP_CACHE_MB's quarter).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MIB = 2**20


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class LazyBody(io.RawIOBase):
    """``size`` bytes of a JSON array, made as they are read."""

    def __init__(self, size: int):
        self.size, self.read_bytes = size, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.size - self.read_bytes)
        if self.read_bytes == 0 and n:
            buffer[:1] = b"["
            buffer[1:n] = b"1" * (n - 1)
        else:
            buffer[:n] = b"1" * n
        self.read_bytes += n
        return n


def ten_thousand_grids():
    import geopandas as gpd
    import numpy as np
    import shapely

    from tests.factories import grid_row

    n = 10_000
    x, y = np.arange(n) % 100 * 0.001 + 121.5, np.arange(n) // 100 * 0.001 + 29.8
    return gpd.GeoDataFrame([grid_row(f"g{i}") for i in range(n)], geometry=shapely.box(x, y, x + 0.001, y + 0.001),
                            crs="EPSG:4326")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--cache-mb", type=int, default=256)
    args = parser.parse_args()

    from werkzeug.test import EnvironBuilder, run_wsgi_app

    from server import create_app

    with tempfile.TemporaryDirectory(prefix="gridmap-bench-") as data_dir:
        app = create_app({"DATA_DIR": data_dir, "DEMO": False, "CACHE_MB": args.cache_mb})
        app.extensions["gridmap"].store.write("grids", ten_thousand_grids(), author="bench")
        client = app.test_client()
        client.get("/api/collections/grids/items?limit=1")  # the feature set, built once

        body = LazyBody(100 * MIB)
        environ = EnvironBuilder(path="/api/whatif", method="POST", content_type="application/json").get_environ()
        environ.update({"wsgi.input": body, "CONTENT_LENGTH": str(body.size)})
        before, start = rss_mib(), time.perf_counter()
        _, status, _ = run_wsgi_app(app, environ, buffered=True)
        print(f"100 MiB JSON to /api/whatif: {status}, {body.read_bytes / MIB:.1f} MiB read, "
              f"{time.perf_counter() - start:.3f} s, RSS +{rss_mib() - before:.0f} MiB")

        before, start = rss_mib(), time.perf_counter()
        size = 0
        for n in range(args.pages):
            resp = client.get(f"/api/collections/grids/items?limit=10000&bbox=121,29,122,30.{n:04d}")
            size = len(resp.data)
        pages = app.extensions["gridmap"].pages
        kept = sum(len(v) for v in pages._items.values())
        print(f"{args.pages} pages of 10,000 features ({size / MIB:.1f} MiB each): "
              f"{time.perf_counter() - start:.1f} s, RSS +{rss_mib() - before:.0f} MiB, "
              f"{len(pages._items)} kept in the page cache, {kept / MIB:.0f} MiB "
              f"(budget {args.cache_mb // 4} MiB)")


if __name__ == "__main__":
    main()
