"""Killing the server (SIGKILL) in the middle of uploads never leaves a broken layer behind: on the embedded
database, and on PostGIS (a write is one transaction on both)."""

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import shapely

from geodata.schema import LAYERS
from geodata.store import open_store
from geodata.store.base import content_hash, feature_texts, text_hash
from geodata.validate import validate
from server.users import UserStore
from tests.factories import grid_row, grids

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data_dir: Path, port: int, database_url: str = "") -> subprocess.Popen:
    env = {**os.environ, "GRIDMAP_DEMO": "0", "GRIDMAP_WORKERS": "1", "GRIDMAP_BASEMAP": "none",
           "GRIDMAP_DATABASE_URL": database_url}
    server = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--data-dir", str(data_dir)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return server
        except requests.ConnectionError:
            time.sleep(0.05)
    os.killpg(server.pid, signal.SIGKILL)
    raise RuntimeError("the server did not start")


def content(layer) -> str:
    """The content hash the store gives ``layer`` once validated."""
    return content_hash(text_hash(t) for t in feature_texts(validate(layer, "grids").data, LAYERS["grids"]).values())


@pytest.fixture(params=["sqlite", "postgis"])
def database_url(request) -> str:
    """The server's GRIDMAP_DATABASE_URL: empty for the embedded database in the data directory."""
    return request.getfixturevalue("postgis_url") if request.param == "postgis" else ""


def test_sigkill_during_uploads_leaves_the_current_version_whole(tmp_path, database_url):
    # 2,000 tiled squares: big enough that an upload takes a while, so kills land inside one; two
    # contents that differ in every grid, uploaded in turn, so that every upload rewrites the whole layer
    x, y = np.arange(2000) % 50 * 0.001 + 121.5, np.arange(2000) // 50 * 0.001 + 29.8
    squares = shapely.box(x, y, x + 0.001, y + 0.001)
    layers = [grids([grid_row(f"g{i}", population=1000 + k) for i in range(2000)], squares) for k in range(2)]
    bodies = [layer.to_json(drop_id=True).encode() for layer in layers]
    whole = {content(layer) for layer in layers}
    location = database_url or tmp_path
    seed = open_store(location)
    seed.write("grids", validate(layers[0], "grids").data, author="seed")
    seed.close()
    token = UserStore(tmp_path).add("editor", "editor")[1]
    rng = random.Random(3)

    for round_ in range(6):
        port = free_port()
        server = start(tmp_path, port, database_url)
        stop, stored = threading.Event(), threading.Event()

        def keep_uploading():
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    answer = requests.post(f"http://127.0.0.1:{port}/api/uploads/grids",
                                           files={"file": ("g.geojson", bodies[n % 2])},
                                           headers={"Authorization": f"Bearer {token}"}, timeout=60)
                except requests.RequestException:
                    return  # the server is gone
                if answer.status_code == 201:
                    stored.set()

        uploader = threading.Thread(target=keep_uploading)
        uploader.start()
        if round_ == 0:  # one upload is stored first, however slow the machine, so kills land between versions
            assert stored.wait(timeout=120), "no upload was stored"
        time.sleep(rng.uniform(0.3, 1.5))  # a random moment: parsing, validating or writing
        os.killpg(server.pid, signal.SIGKILL)  # master and worker at once
        server.wait()
        stop.set()
        uploader.join()

        store = open_store(location)  # as the next start sees it
        store.check()
        current = store.current("grids")
        assert current.sha256 in whole  # exactly one of the uploaded layers, not a mix
        assert len(store.read("grids")) == len(store.query("grids").features) == current.features == 2000
        versions = [v.version for v in store.versions("grids")]
        assert versions == list(range(1, len(versions) + 1))
        store.close()
    store = open_store(location)
    assert len(store.versions("grids")) > 1  # uploads did complete between kills
    store.close()
