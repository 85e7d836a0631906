"""Items page throughput: gridmap against pygeoapi on the same grids, and a fixed-page ceiling.

    .venv/bin/python benchmarks/bench_ogcapi.py [--database-url postgresql://...]

All three run under gunicorn with 2 workers of 4 threads on 127.0.0.1 (gridmap as
``python -m server``, whose workers read requests in an event loop first; the other
two with gthread) and are loaded by wrk (Debian's ``wrk``: 2 threads, 8 connections,
10 s) in one run:

- pygeoapi serving the demo grids from a GeoJSON file (its GeoJSON provider),
  installed from requirements-bench.txt into ``.venv-bench`` (made on first run);
- gridmap's ``/api/collections/grids/items?limit=100``, on its embedded database and, with
  ``--database-url`` (an empty PostGIS database: the server fills it with the demo), on PostGIS;
- a Flask app returning a fixed page of the same size: the ceiling for this
  server setup on this machine.

Prints requests/s, median latency and the ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import requests

from _server import ROOT, demo_data_dir, free_port, running_server, wait_for_warm_up, wait_until_up

BENCH_VENV = ROOT / ".venv-bench"
GUNICORN = ["--workers", "2", "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"]
WRK = ["wrk", "--threads", "2", "--connections", "8", "--duration", "10s", "--timeout", "30s", "--latency"]


def bench_venv() -> Path:
    if not (BENCH_VENV / "bin" / "pygeoapi").exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "--quiet", "-r",
                        str(ROOT / "requirements-bench.txt")], check=True)
    return BENCH_VENV / "bin"


def wrk(url: str) -> tuple[float, float]:
    """(requests per second, median latency in ms)."""
    out = subprocess.run([*WRK, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()
    return rps, float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


@contextlib.contextmanager
def gunicorn(bin_dir: Path, app: str, env: dict, cwd: Path):
    port = free_port()
    proc = subprocess.Popen([str(bin_dir / "gunicorn"), *GUNICORN, "--bind", f"127.0.0.1:{port}", app],
                            cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + "/", 120)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


PYGEOAPI_CONFIG = """
server:
  bind: {{host: 127.0.0.1, port: 5000}}
  url: http://127.0.0.1:5000
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  language: en-US
  limits: {{default_items: 10, max_items: 10000}}
  limit: 10
  map: {{url: "https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png", attribution: "OpenStreetMap"}}
logging: {{level: ERROR}}
metadata:
  identification: {{title: grids, description: grids, keywords: [grids], url: "http://127.0.0.1",
                   terms_of_service: "https://example.org/terms"}}
  license: {{name: CC-BY 4.0, url: "https://creativecommons.org/licenses/by/4.0/"}}
  provider: {{name: gridmap, url: "http://127.0.0.1"}}
  contact: {{name: gridmap}}
resources:
  grids:
    type: collection
    title: grids
    description: Ningbo demo grids
    keywords: [grids]
    extents: {{spatial: {{bbox: [120.8, 28.8, 122.3, 30.4], crs: "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}}}}
    providers:
      - {{type: feature, name: GeoJSON, data: "{data}", id_field: grid_id}}
"""

FIXED_APP = """
from flask import Flask, Response
app = Flask(__name__)
BODY = open("page.json", "rb").read()

@app.get("/")
def page():
    return Response(BODY, mimetype="application/geo+json")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an empty PostGIS database: gridmap measured on it too")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    pygeoapi_bin = bench_venv()
    gridmap_bin = Path(sys.executable).parent
    results = {}
    with demo_data_dir() as data_dir, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with running_server(data_dir, WORKERS=2, THREADS=4) as (base, _):
            wait_for_warm_up(base)
            url = f"{base}/api/collections/grids/items?limit=100"
            page = requests.get(url).content
            (tmp / "grids.geojson").write_bytes(requests.get(f"{base}/api/download/grids.geojson").content)
            results["gridmap"] = wrk(url)
        if args.database_url:
            with tempfile.TemporaryDirectory() as other, \
                    running_server(other, WORKERS=2, THREADS=4, DATABASE_URL=args.database_url) as (base, _):
                wait_for_warm_up(base)
                url = f"{base}/api/collections/grids/items?limit=100"
                same = requests.get(url).json()["features"] == json.loads(page)["features"]
                assert same, "the PostGIS server answers another first page than the embedded one"
                results["gridmap on PostGIS"] = wrk(url)
        (tmp / "page.json").write_bytes(page)
        (tmp / "fixed.py").write_text(FIXED_APP)
        with gunicorn(gridmap_bin, "fixed:app", {}, tmp) as base:
            results["fixed page"] = wrk(base + "/")
        (tmp / "config.yml").write_text(textwrap.dedent(PYGEOAPI_CONFIG.format(data=tmp / "grids.geojson")))
        env = {"PYGEOAPI_CONFIG": str(tmp / "config.yml"), "PYGEOAPI_OPENAPI": str(tmp / "openapi.yml")}
        subprocess.run([str(pygeoapi_bin / "pygeoapi"), "openapi", "generate", str(tmp / "config.yml"),
                        "--output-file", str(tmp / "openapi.yml")], env={**os.environ, **env}, check=True,
                       capture_output=True)
        with gunicorn(pygeoapi_bin, "pygeoapi.flask_app:APP", env, tmp) as base:
            url = f"{base}/collections/grids/items?limit=100&f=json"
            assert len(requests.get(url).json()["features"]) == 100
            results["pygeoapi"] = wrk(url)

    print(f"items page of 100 grids ({len(page) / 1000:.0f} kB), wrk 2 threads × 8 connections × 10 s, "
          f"gunicorn 2 workers × 4 threads each:")
    for name, (rps, p50) in results.items():
        print(f"  {name:11s} {rps:8.1f} requests/s   p50 {p50:6.2f} ms")
    baseline, ceiling = results["pygeoapi"][0], results["fixed page"][0]
    for name in ("gridmap", "gridmap on PostGIS"):
        if name in results:
            ours = results[name][0]
            print(f"{name} / pygeoapi: {ours / baseline:.0f}x (goal ≥ 300x); {name} / fixed-page ceiling: "
                  f"{ours / ceiling:.0%} (goal ≥ 20%); {name} p50 {results[name][1]:.2f} ms (goal ≤ 5 ms)")


if __name__ == "__main__":
    main()
