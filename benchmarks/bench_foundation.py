"""Foundation figures on the Ningbo demo: generation, cold start, item pages, download, page size.

    .venv/bin/python benchmarks/bench_foundation.py

Starts the real server (``python -m server``, gunicorn) on a fresh data directory
on 127.0.0.1 and measures it over loopback.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import gzip
import statistics
import time

import requests

from _server import demo_data_dir, running_server


def main() -> None:
    from geodata.demo import build_demo

    start = time.perf_counter()
    demo = build_demo()
    generated = time.perf_counter() - start
    print(f"demo generation (build_demo):           {generated:6.2f} s  "
          f"({len(demo.grids)} grids, {len(demo.centers)} centres)")

    start = time.perf_counter()
    with demo_data_dir() as data_dir:
        print(f"empty data dir filled (generate+validate+store): {time.perf_counter() - start:6.2f} s")
        start = time.perf_counter()
        with running_server(data_dir) as (base, up):
            measure(base, up, start)


def measure(base: str, up: float, start: float) -> None:
    first = requests.get(f"{base}/api/collections/grids/items?limit=100", timeout=60)
    first.raise_for_status()
    cold = time.perf_counter() - start
    print(f"cold start: /healthz answers after      {up:6.2f} s")
    print(f"cold start: first items page after      {cold:6.2f} s")

    session = requests.Session()
    url = f"{base}/api/collections/grids/items?limit=100"
    for _ in range(5):  # every worker has loaded the layer
        session.get(url).raise_for_status()
    times = []
    for i in range(50):
        t = time.perf_counter()
        session.get(f"{url}&offset={i * 100}").raise_for_status()
        times.append(time.perf_counter() - t)
    print(f"items?limit=100 latency, median of 50:  {statistics.median(times) * 1000:6.1f} ms "
          f"(p90 {sorted(times)[44] * 1000:.1f} ms)")

    t = time.perf_counter()
    body = session.get(f"{base}/api/download/grids.geojson").content
    print(f"full grids GeoJSON download:            {time.perf_counter() - t:6.2f} s ({len(body) / 1e6:.1f} MB)")

    page = session.get(f"{base}/").content
    print(f"size of / :                             {len(page):7d} bytes ({len(gzip.compress(page))} gzipped)")
    for layer in ("coverage", "districts", "centers"):
        data = session.get(f"{base}/map/data/{layer}.geojson").content
        print(f"  map data {layer:8s}                      {len(data):7d} bytes ({len(gzip.compress(data))} gzipped)")


if __name__ == "__main__":
    main()
