"""Hostile uploads against the upload limits: how long each takes to answer and how much memory it costs.

    .venv/bin/python benchmarks/bench_upload_limits.py [--timeout 60] [--only NAME]

Each case runs as a dry run of ``geodata.uploads.upload`` (parse, validate, tiling check
against the demo districts) in a fresh process, so its peak RSS growth is its own
(``/proc/self/clear_refs`` resets the peak after the imports).  Prints the answer, the
seconds and the RSS growth; asserts nothing.  A case still running after ``--timeout``
seconds is killed and shown as such (today's code takes minutes on some).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _server import ROOT  # noqa: F401  (puts the project on sys.path)

CENTRE = (121.545, 29.865)  # inside 海曙区 of the demo


def ring(n: int, radius_deg: float = 0.005) -> list[list[float]]:
    """A closed ring of ``n`` vertices (and the closing one) round CENTRE, zig-zagging 0.5 m so no simplification helps."""
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = radius_deg + np.where(np.arange(n) % 2, 5e-6, 0.0)
    coords = np.column_stack([CENTRE[0] + r * np.cos(angle), CENTRE[1] + r * np.sin(angle)]).round(8).tolist()
    return coords + [coords[0]]


def grid_feature(grid_id: str, coords) -> dict:
    from tests.factories import grid_row

    return {"type": "Feature", "properties": grid_row(grid_id),
            "geometry": {"type": "Polygon", "coordinates": [coords]}}


def geojson(n_vertices: int) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": [grid_feature("big", ring(n_vertices))]}).encode()


def gpkg_with_view(path: Path, view_sql: str) -> bytes:
    """A GeoPackage whose layer "grids" is a view ``view_sql`` (``SELECT ... AS geom``) over a one-grid table."""
    import geopandas as gpd
    from shapely import box

    from tests.factories import grid_row

    gpd.GeoDataFrame([grid_row("g1")], geometry=[box(121.54, 29.86, 121.55, 29.87)], crs=4326).to_file(
        path, driver="GPKG", layer="src")
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE VIEW grids AS {view_sql}")
        db.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                   "VALUES ('grids', 'features', 'grids', 4326)")
        db.execute("INSERT INTO gpkg_geometry_columns VALUES ('grids', 'geom', 'POLYGON', 4326, 0, 0)")
    return path.read_bytes()


def gpkg_generated(path: Path) -> bytes:
    """A GeoPackage whose one table has a generated column of a 1e9-byte zeroblob."""
    import geopandas as gpd
    from shapely import box

    from tests.factories import grid_row

    gpd.GeoDataFrame([grid_row("g1")], geometry=[box(121.54, 29.86, 121.55, 29.87)], crs=4326).to_file(
        path, driver="GPKG", layer="grids")
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE grids ADD COLUMN blob BLOB GENERATED ALWAYS AS (zeroblob(1000000000)) VIRTUAL")
    return path.read_bytes()


CASES = {
    "1,000,000-vertex polygon (GeoJSON)": lambda tmp: (geojson(1_000_000), "grids.geojson"),
    "100,000-vertex polygon (GeoJSON, allowed)": lambda tmp: (geojson(99_999), "grids.geojson"),  # + closing
    "GeoPackage view of 4 x 100 MB strings": lambda tmp: (gpkg_with_view(
        tmp / "strings.gpkg", "SELECT s.fid * 10 + n.k AS fid, s.geom AS geom, s.grid_id || n.k AS grid_id, "
        "printf('%.*c', 100000000, 'x') AS name FROM src s, "
        "(SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) n"), "grids.gpkg"),
    "GeoPackage 20-million-row recursive view": lambda tmp: (gpkg_with_view(
        tmp / "rows.gpkg", "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000000) "
        "SELECT i AS fid, (SELECT geom FROM src) AS geom FROM c"), "grids.gpkg"),
    "GeoPackage generated zeroblob(1e9) column": lambda tmp: (gpkg_generated(tmp / "generated.gpkg"), "grids.gpkg"),
}


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def _run(path: str, filename: str, data_dir: str, out) -> None:
    from geodata.errors import GridmapError
    from geodata.store import open_store
    from geodata.uploads import upload

    store = open_store(data_dir)
    data = Path(path).read_bytes()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak RSS starts again from here
    before = _rss_kib("VmRSS")
    start = time.perf_counter()
    try:
        outcome = upload(store, "grids", data, filename, author="bench", dry_run=True)
        answer = f"{outcome.status} ({len(outcome.report.errors)} errors, {len(outcome.report.warnings)} warnings)"
    except GridmapError as exc:
        answer = f"{exc.status}: {exc.message[:110]}"
    seconds = time.perf_counter() - start
    out.send((answer, seconds, (_rss_kib("VmHWM") - before) / 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--only", help="run only the cases whose name contains this")
    args = parser.parse_args()

    from geodata.demo import build_demo
    from geodata.store import open_store

    demo = build_demo()
    with tempfile.TemporaryDirectory(prefix="gridmap-bench-") as tmp:
        tmp = Path(tmp)
        open_store(tmp / "data").write("districts", demo.districts, author="bench")
        print(f"{'case':45} {'answer':70} {'seconds':>8} {'RSS +MB':>8}")
        for name, build in CASES.items():
            if args.only and args.only.lower() not in name.lower():
                continue
            data, filename = build(tmp)
            path = tmp / filename
            path.write_bytes(data)
            receive, send = multiprocessing.Pipe(duplex=False)
            child = multiprocessing.get_context("fork").Process(target=_run, args=(str(path), filename,
                                                                                  str(tmp / "data"), send))
            child.start()
            if receive.poll(args.timeout):
                answer, seconds, grown = receive.recv()
                print(f"{name:45} {answer:70} {seconds:8.2f} {grown:8.0f}", flush=True)
            else:
                print(f"{name:45} {'(killed: still running)':70} {'>' + format(args.timeout, 'g'):>8} {'?':>8}",
                      flush=True)
            child.kill()
            child.join()


if __name__ == "__main__":
    sys.exit(main())
