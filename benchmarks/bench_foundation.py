"""Foundation figures on the Ningbo demo: generation, cold start, item pages, download, page size.

    .venv/bin/python benchmarks/bench_foundation.py

Starts the real server (``python -m server``, gunicorn) on a fresh data directory
on 127.0.0.1 and measures it over loopback.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import gzip
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, deadline_s: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < deadline_s:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - start
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {deadline_s} s")


def main() -> None:
    from geodata.demo import build_demo, install_if_empty
    from geodata.store import FileStore

    start = time.perf_counter()
    demo = build_demo()
    generated = time.perf_counter() - start
    print(f"demo generation (build_demo):           {generated:6.2f} s  "
          f"({len(demo.grids)} grids, {len(demo.centers)} centres)")

    data_dir = tempfile.mkdtemp(prefix="gridmap-bench-")
    start = time.perf_counter()
    install_if_empty(FileStore(data_dir))
    print(f"empty data dir filled (generate+validate+store): {time.perf_counter() - start:6.2f} s")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GRIDMAP_DATA_DIR": data_dir, "GRIDMAP_PORT": str(port), "GRIDMAP_BASEMAP": "none"}
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        up = wait_until_up(f"{base}/healthz", 60)
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
        for layer in ("grids", "centers"):
            data = session.get(f"{base}/map/data/{layer}.geojson").content
            print(f"  map data {layer:8s}                      {len(data):7d} bytes ({len(gzip.compress(data))} gzipped)")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
