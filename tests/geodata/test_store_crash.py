"""A writer killed with SIGKILL at any moment of a large write never leaves a broken layer behind.

Each write of the writer changes every one of its 5,000 squares (three contents in turn), so each
is a large transaction; it is killed at random moments, 20 times: inside a transaction, while it
commits, while the write-ahead log is checkpointed, or between writes.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geodata.schema import LAYERS
from geodata.store.base import content_hash, feature_texts, text_hash
from geodata.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
N = 5000
KILLS = 20


def variant(k: int) -> gpd.GeoDataFrame:
    """The k-th content: the same squares, every name and population its own."""
    x = np.arange(N) % 100 * 0.001 + 121.5
    y = np.arange(N) // 100 * 0.001 + 29.8
    return gpd.GeoDataFrame({"grid_id": [f"g{i:05d}" for i in range(N)],
                             "name": [f"网格{i}（第{k}版）" for i in range(N)],
                             "population": [100 * k + i % 7 for i in range(N)]},
                            geometry=shapely.box(x, y, x + 0.001, y + 0.001), crs=4326)


# Writes the three contents in turn until it is killed (the store it opens is the test's).
WRITER = """
import sys
from geodata.store import open_store
from tests.geodata.test_store_crash import variant
store = open_store(sys.argv[1])
contents = [variant(k) for k in range(3)]
print("ready", flush=True)
n = 0
while True:
    store.write("grids", contents[n % 3], author="writer", message=f"write {n}")
    n += 1
"""


def whole_contents() -> dict[str, list[str]]:
    """Each written content's feature texts in key order, by its content hash."""
    found = {}
    for k in range(3):
        texts = feature_texts(variant(k), LAYERS["grids"])
        ordered = [texts[key] for key in sorted(texts)]
        found[content_hash(text_hash(t) for t in ordered)] = ordered
    return found


def assert_whole(store: SQLiteStore, number: int, contents: dict[str, list[str]]) -> None:
    """Version ``number`` holds exactly one of the written contents, and its record says so."""
    v = store.version("grids", number)
    texts = store.query("grids", number).features
    assert v.sha256 in contents, f"version {number} is none of the written contents"
    assert texts == contents[v.sha256]
    assert len(texts) == v.features == N == store.count("grids", number) == len(store.read("grids", number))


def test_sigkill_during_large_writes_leaves_the_current_version_whole(tmp_path):
    rng = random.Random(7)
    contents = whole_contents()
    survived = 0
    for round_ in range(KILLS):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert writer.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 1.5))  # a random moment inside some write (or between two)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()

        store = SQLiteStore(tmp_path)  # as a fresh process sees it
        try:
            store.check()
            versions = store.versions("grids")
            if not versions:
                assert survived == 0  # killed before the first write was committed
                continue
            numbers = [v.version for v in versions]
            assert numbers == list(range(1, len(numbers) + 1))
            assert all(v.author == "writer" and v.message.startswith("write ") for v in versions)
            assert_whole(store, numbers[-1], contents)
            if len(numbers) > 1:
                assert_whole(store, numbers[-2], contents)  # the one before stays readable too
            survived = len(numbers)
        finally:
            store.close()

    assert survived > 1  # writes did complete between kills
    store = SQLiteStore(tmp_path)  # and writing goes on
    before = store.current("grids")
    after = store.write("grids", variant(1), author="after", if_version=before.version)
    assert after.version == before.version + 1 and after.features == N
    store.check()
    assert_whole(store, after.version, contents)
