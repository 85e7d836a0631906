"""The map drawn from vector tiles: its first view, and its tiles while panning and zooming, on the
Ningbo demo and the province demo (``GRIDMAP_DEMO=zhejiang``), beside the issue's targets.

    .venv/bin/python benchmarks/bench_map_tiles.py [--demo ningbo|zhejiang|both] [--loads 3]
        [--shots /tmp/gridmap-map-tiles]

Needs Debian's Chromium at /usr/bin/chromium and ``playwright`` (requirements-dev.txt), as
bench_map.py.  The province demo takes a while to build: its data directory is kept in
``$TMPDIR/gridmap-bench-cache/zhejiang-data`` and reused (delete it to build it anew).

For each demo, ``python -m server`` (one worker, ``GRIDMAP_BASEMAP=none``) is started and warmed up
(analysis, map layers, search index), then:

- **first view of /**: ``--loads`` loads in fresh browser contexts, HTTP cache off, after one
  warm-up load (bench_map.py's ``load_once``): bytes over the wire (CDP ``encodedDataLength``:
  bodies as sent, gzipped where the server gzips, plus headers), requests, and the time until
  ``<body data-gridmap-ready>`` (every layer shown at start has its tiles in view drawn), median.
  Targets: ≤ 1 MB and ≤ 1.5 s at province scale; Ningbo no worse than 0.70 MB / ~1 s (the
  whole-layer GeoJSON map before tiles).
- **tiles while panning and zooming**: the tiles a 1280 × 800 map asks for along a path (zoom in
  step by step from the first view's zoom to 16 over the busiest place, then pan three screens
  east at 13 and at 15; at map zoom z the map asks for the server's tiles of z − 1, drawn 512 px
  wide), for every layer the map shows at start, fetched as a browser would (six
  at a time, gzip accepted, no conditional request): **cold** is the first pass (tiles nobody
  asked for before; the low zooms, up to ``GRIDMAP_TILE_SEED_ZOOM`` (8), were seeded by the
  server's warm-up, as they are after a start or an edit: the rest are cut as asked for),
  **warm** the second; p50 / p95 / max of each request's time, and the
  largest tile (as sent and plain).  Targets: p95 ≤ 50 ms warm, ≤ 250 ms cold, none over 500 KB.
  Beside them the server's CPU time a request (its processes' user + system time over the pass,
  read from /proc), and the machine's load average: the wall-clock times of a loaded machine say
  as much about the other work as about the server.

Timings are of a machine that may be busy with other work: read them with that in mind.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import math
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from _server import demo_data_dir, running_server, wait_for_warm_up
from bench_map import CHROMIUM, CHROMIUM_ARGS, OURS_DRAWN_JS, VIEWPORT, load_once, mb

CACHE = Path(tempfile.gettempdir()) / "gridmap-bench-cache"
# the layers the map shows at start that come from tiles (maps/coverage_map.py), and the busiest places
LAYERS = ("coverage", "gaps", "districts", "centers")
PLACES = {"ningbo": [(121.55, 29.87)], "zhejiang": [(120.16, 30.27), (121.55, 29.87)]}


@contextlib.contextmanager
def province_data_dir():
    """The province demo's data directory, built once and kept (building it takes a minute or more)."""
    from geodata.demo import install_if_empty
    from geodata.store import open_store

    path = CACHE / "zhejiang-data"
    if not (path / "ready").exists():
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        start = time.perf_counter()
        install_if_empty(open_store(str(path)), "zhejiang")
        (path / "ready").write_text("built\n")
        print(f"province demo built in {time.perf_counter() - start:.0f} s, kept in {path}", flush=True)
    yield str(path)


def tile_of(lon: float, lat: float, z: int) -> tuple[float, float]:
    n = 2**z
    return (lon + 180) / 360 * n, (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n


def view_tiles(lon: float, lat: float, zoom: int) -> list[tuple[int, int, int]]:
    """The tiles a VIEWPORT-sized map centred at (lon, lat) at ``zoom`` asks for: the server's tiles of
    the zoom above, each drawn 512 px wide (maps/static/gridmap-map.js TILE_PX, ZOOM_OFFSET)."""
    z = zoom - 1
    x, y = tile_of(lon, lat, z)
    half_w, half_h = VIEWPORT["width"] / 1024, VIEWPORT["height"] / 1024
    return [(z, col, row) for col in range(int(x - half_w), int(x + half_w) + 1)
            for row in range(int(y - half_h), int(y + half_h) + 1) if 0 <= col < 2**z and 0 <= row < 2**z]


def path_tiles(demo: str, first_zoom: int) -> list[tuple[int, int, int]]:
    """Zoom in over each busy place, then pan three screens east at 13 and at 15; no tile twice."""
    seen, out = set(), []
    for lon, lat in PLACES[demo]:
        views = [(lon, lat, z) for z in range(first_zoom, 17)]
        for z in (13, 15):
            step = VIEWPORT["width"] / 256 / 2**z * 360  # a screen's width in degrees at map zoom z
            views += [(lon + k * step, lat, z) for k in (1, 2, 3)]
        for view in views:
            for tile in view_tiles(*view):
                if tile not in seen:
                    seen.add(tile)
                    out.append(tile)
    return out


def fetch_all(base: str, tiles: list[tuple[int, int, int]]) -> list[tuple[float, int, int]]:
    """(seconds, bytes as sent, bytes plain) of each tile of each layer, six requests at a time."""
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=6))

    def one(job):
        layer, (z, x, y) = job
        start = time.perf_counter()
        response = session.get(f"{base}/api/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}",
                               headers={"Accept-Encoding": "gzip"}, stream=True, timeout=120)
        raw = response.raw.read(decode_content=False)
        took = time.perf_counter() - start
        response.raise_for_status()
        plain = gzip.decompress(raw) if raw and response.headers.get("Content-Encoding") == "gzip" else raw
        return took, len(raw), len(plain)

    jobs = [(layer, tile) for tile in tiles for layer in LAYERS]
    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(one, jobs))


def figures(name: str, results: list[tuple[float, int, int]], target_ms: int) -> str:
    times = np.array([r[0] for r in results]) * 1000
    return (f"{name}: {len(results)} requests, p50 {np.percentile(times, 50):.0f} ms, "
            f"p95 {np.percentile(times, 95):.0f} ms (target ≤ {target_ms}), max {times.max():.0f} ms")


def load() -> str:
    """The machine's load average (1, 5, 15 minutes) and its cores: how busy it was with other work."""
    return f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores"


def server_cpu_s(base: str) -> float:
    """CPU seconds the server at ``base`` (its processes: found by the port it was given) has used so far:
    a figure the machine's other work changes far less than the wall-clock times."""
    port, total = base.rsplit(":", 1)[1], 0.0
    for proc in Path("/proc").iterdir():
        try:
            if f"GRIDMAP_PORT={port}".encode() not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        except (OSError, ValueError, IndexError):  # not a process, gone, or not ours to read
            continue
    return total


def bench(demo: str, data_dir: str, loads: int, shots: Path, browser) -> None:
    print(f"\n== {demo} (load average {load()})", flush=True)
    with running_server(data_dir, WORKERS=1) as (base, _):
        wait_for_warm_up(base)
        grids = requests.get(f"{base}/api/collections/grids/items", params={"limit": 1}, timeout=60).json()
        print(f"{grids.get('numberMatched', '?'):,} grids", flush=True)
        shots.mkdir(parents=True, exist_ok=True)
        warm_up = load_once(browser, base + "/", OURS_DRAWN_JS)
        runs = [load_once(browser, base + "/", OURS_DRAWN_JS, screenshot=str(shots / f"{demo}.png") if i == 0 else None)
                for i in range(loads)]
        outside = [u for r in runs for u in r.urls if not u.startswith(base)]
        errors = sorted({e for r in runs for e in r.page_errors})
        wire = statistics.median(r.wire_bytes for r in runs)
        drawn = statistics.median(r.draw_ms for r in runs)
        tile_requests = [u for u in runs[0].urls if "/tiles/" in u]
        print(f"first view of /: {mb(wire)} over the wire, {len(runs[0].urls)} requests ({len(tile_requests)} tiles), "
              f"drawn in {drawn:.0f} ms (median of {', '.join(f'{r.draw_ms:.0f}' for r in runs)} ms; "
              f"the first load after start: {warm_up.draw_ms:.0f} ms)"
              + ("; target ≤ 1 MB, ≤ 1500 ms" if demo == "zhejiang" else "; before tiles: 0.70 MB, ~1000 ms"))
        heaviest = sorted(runs[0].sizes.items(), key=lambda item: -item[1][0])[:5]
        print("  heaviest: " + ", ".join(f"{u.replace(base, '')} {mb(n)}" for u, (n, _) in heaviest))
        if outside or errors:
            print(f"  note: requests elsewhere {outside[:3]}, page errors {errors[:3]}")
        zoom = _first_zoom(browser, base)
        tiles = path_tiles(demo, zoom)
        busy = server_cpu_s(base)
        cold = fetch_all(base, tiles)
        cold_cpu, busy = server_cpu_s(base) - busy, server_cpu_s(base)
        warm = fetch_all(base, tiles)
        warm_cpu = server_cpu_s(base) - busy
        print(f"tiles along the path (map zoom {zoom} to 16, {len(tiles)} tiles × {len(LAYERS)} layers):")
        print("  " + figures("cold", cold, 250) + f"; the server's CPU: {cold_cpu / len(cold) * 1000:.1f} ms a request")
        print("  " + figures("warm", warm, 50) + f"; the server's CPU: {warm_cpu / len(warm) * 1000:.1f} ms a request")
        print(f"  load average after: {load()}")
        sent, plain = max(r[1] for r in cold), max(r[2] for r in cold)
        print(f"  largest tile: {sent / 1024:.0f} KB as sent (gzip), {plain / 1024:.0f} KB plain "
              "(target: none over 500 KB)")


def _first_zoom(browser, base: str) -> int:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(base + "/")
    page.wait_for_function(OURS_DRAWN_JS, polling="raf", timeout=300_000)
    zoom = page.evaluate("window.gridmap.map.getZoom()")
    page.close()
    return int(zoom)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", choices=["ningbo", "zhejiang", "both"], default="both")
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--shots", default="/tmp/gridmap-map-tiles", help="where screenshots of the first views go")
    args = parser.parse_args()
    print(f"Chromium at {CHROMIUM}, {VIEWPORT['width']}x{VIEWPORT['height']}, fresh context each load, cache off; "
          "timings on a machine that may be busy with other work")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            if args.demo in ("ningbo", "both"):
                with demo_data_dir() as data_dir:
                    bench("ningbo", data_dir, args.loads, Path(args.shots), browser)
            if args.demo in ("zhejiang", "both"):
                with province_data_dir() as data_dir:
                    bench("zhejiang", data_dir, args.loads, Path(args.shots), browser)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
