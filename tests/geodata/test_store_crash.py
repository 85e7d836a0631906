"""A writer killed with SIGKILL mid-write never leaves a broken layer behind."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from geodata.store import FileStore

ROOT = Path(__file__).resolve().parents[2]

# Writes versions of 3,000 squares (a 1.3 MB file) in a loop until it is killed.
WRITER = """
import sys
import geopandas as gpd, numpy as np, shapely
from geodata.store import FileStore
store = FileStore(sys.argv[1])
x = np.arange(3000) % 60 * 0.001 + 121.5
y = np.arange(3000) // 60 * 0.001 + 29.8
gdf = gpd.GeoDataFrame({"grid_id": [f"g{i}" for i in range(3000)], "name": ["网格"] * 3000},
                       geometry=shapely.box(x, y, x + 0.001, y + 0.001), crs=4326)
print("ready", flush=True)
while True:
    store.write("grids", gdf, author="writer")
"""


def test_sigkill_during_writes_leaves_the_current_version_intact(tmp_path):
    rng = random.Random(7)
    for round_ in range(10):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert writer.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))  # a random moment inside some write
        writer.send_signal(signal.SIGKILL)
        writer.wait()

        store = FileStore(tmp_path)  # as a fresh process would see it
        current = store.current("grids")
        if current is None:
            assert round_ == 0  # killed before the first write finished
            continue
        data = (tmp_path / "layers" / "grids" / f"v{current.version:06d}.geojson").read_bytes()
        assert hashlib.sha256(data).hexdigest() == current.sha256
        assert len(json.loads(data)["features"]) == 3000
        assert len(store.read("grids")) == 3000
        versions = [v.version for v in store.versions("grids")]
        assert versions == list(range(1, len(versions) + 1))

    store.write("grids", store.read("grids"), author="after")  # and writing goes on, tidying up
    assert list((tmp_path / "layers" / "grids").glob(".*.tmp")) == []
