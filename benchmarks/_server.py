"""Start ``python -m server`` on a demo data directory for a benchmark, on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def demo_data_dir():
    """A temporary data directory filled with the demo, removed afterwards."""
    from geodata.demo import install_if_empty
    from geodata.store import open_store

    with tempfile.TemporaryDirectory(prefix="gridmap-bench-") as data_dir:
        install_if_empty(open_store(data_dir))
        yield data_dir


def wait_until_up(url: str, deadline_s: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < deadline_s:
        with contextlib.suppress(requests.ConnectionError, requests.Timeout):  # not listening yet, or busy starting
            if requests.get(url, timeout=10).status_code == 200:
                return time.perf_counter() - start
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {deadline_s} s")


@contextlib.contextmanager
def running_server(data_dir: str, root: Path = ROOT, **settings):
    """Yields (base_url, seconds until /healthz answered); ``root`` is the tree whose code runs."""
    port = free_port()
    env = {**os.environ, "GRIDMAP_DATA_DIR": data_dir, "GRIDMAP_PORT": str(port), "GRIDMAP_BASEMAP": "none",
           **{f"GRIDMAP_{k}": str(v) for k, v in settings.items()}}
    server = subprocess.Popen([sys.executable, "-m", "server"], cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        yield base, wait_until_up(f"{base}/healthz", 120)
    finally:
        server.terminate()
        try:
            server.wait(timeout=40)  # gunicorn's graceful timeout is 30 s
        except subprocess.TimeoutExpired:  # workers still busy: end the master and its workers (its own group)
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def wait_for_warm_up(base: str) -> None:
    """Until /healthz says ``warm`` on WARM_ANSWERS answers in a row, each on a new connection (landing on
    either worker): every worker has built its analysis, tiles and search index in the background after
    the fork, so figures taken after this are of a server at rest.  An older app (a baseline) that does
    not say: each of its map layers and its search asked for instead, which wait for its warm-up."""
    deadline = time.monotonic() + 900
    in_a_row = 0
    while in_a_row < WARM_ANSWERS:
        health = requests.get(f"{base}/healthz", timeout=60).json()
        if "warm" not in health:
            return _wait_for_old_warm_up(base)
        in_a_row = in_a_row + 1 if health["warm"] else 0
        if time.monotonic() > deadline:
            raise RuntimeError("the server was not warm after 900 s")
        if not health["warm"]:
            time.sleep(0.5)


WARM_ANSWERS = 8  # both workers, near certainly (1 in 128 that one was never asked)


def _wait_for_old_warm_up(base: str) -> None:
    from maps.coverage_map import MAP_DATA

    for _ in range(4):
        for layer in MAP_DATA:
            requests.get(f"{base}/map/data/{layer}.geojson", headers={"Accept-Encoding": "gzip"},
                         timeout=900).raise_for_status()
        search = requests.get(f"{base}/api/search", params={"q": "网格"}, timeout=900)  # its index: built last
        if search.status_code != 404:  # an older app (a baseline) has no search
            search.raise_for_status()
