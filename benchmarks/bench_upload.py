"""Upload + validate + store of the full demo grids, as GeoJSON and as a GBK Shapefile in CGCS2000.

    .venv/bin/python benchmarks/bench_upload.py

Times the upload path in-process (geodata.uploads.upload: parse, validate, tiling
check against the districts, atomic write) and through the real server over
loopback with an editor's token.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import requests

from _server import ROOT, running_server


def shapefile_zip(grids, tmp: Path) -> bytes:
    """The grids as a zipped Shapefile the way Chinese desktop GIS writes it: GBK, EPSG:4549, no .cpg."""
    with warnings.catch_warnings():  # the 10-character DBF names are the point: uploads map them back
        warnings.simplefilter("ignore")
        grids.to_crs(4549).to_file(tmp / "grids.shp", encoding="GBK")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in tmp.glob("grids.*"):
            if part.suffix != ".cpg":
                archive.write(part, part.name)
    return buffer.getvalue()


def main() -> None:
    from geodata.demo import build_demo
    from geodata.store import open_store
    from geodata.uploads import upload

    demo = build_demo()
    as_geojson = demo.grids.to_json(drop_id=True).encode()
    with tempfile.TemporaryDirectory() as tmp:
        as_shapefile = shapefile_zip(demo.grids, Path(tmp))
    print(f"demo grids: {len(demo.grids)} features; GeoJSON {len(as_geojson) / 1e6:.1f} MB, "
          f"zipped Shapefile {len(as_shapefile) / 1e6:.1f} MB")

    for name, data, filename in (("GeoJSON", as_geojson, "grids.geojson"),
                                 ("Shapefile (GBK, EPSG:4549)", as_shapefile, "grids.zip")):
        times = []
        for _ in range(3):
            with tempfile.TemporaryDirectory() as data_dir:
                store = open_store(data_dir)
                store.write("districts", demo.districts, author="bench")
                start = time.perf_counter()
                outcome = upload(store, "grids", data, filename, author="bench")
                times.append(time.perf_counter() - start)
                assert outcome.status == 201, outcome.report.errors[:3]
        print(f"in-process upload+validate+store, {name}: median of 3 {statistics.median(times):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times)})")

    with tempfile.TemporaryDirectory() as data_dir:
        token = subprocess.run([sys.executable, "-m", "server", "user", "add", "bench", "--role", "editor",
                                "--data-dir", data_dir], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split()[-1]
        with running_server(data_dir, DEMO=1) as (base, _):
            times = []
            for _ in range(3):
                start = time.perf_counter()
                resp = requests.post(f"{base}/api/uploads/grids", headers={"Authorization": f"Bearer {token}"},
                                     files={"file": ("grids.geojson", as_geojson)}, data={"message": "bench"})
                times.append(time.perf_counter() - start)
                assert resp.status_code == 201, resp.text[:300]
            print(f"over HTTP (POST /api/uploads/grids, GeoJSON): median of 3 {statistics.median(times):.2f} s "
                  f"({', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
