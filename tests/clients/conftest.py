"""Real clients against the real server: GDAL's OAPIF driver (ogrinfo, ogr2ogr), OWSLib and schemathesis.

Each module gets its own ``python -m server`` on 127.0.0.1 (one worker, no base map), as a GIS
client would meet it:

- ``demo_api``: the Ningbo demo (8,500 grids); the data directory is filled once per session by the
  first server to start (``GRIDMAP_DEMO=1``);
- ``small_api``: six hand-made grids, two centres and a district, with an editor's API token: every
  what-if analysis there takes milliseconds, so schemathesis can try hundreds of requests.

GDAL's tools are Debian's ``gdal-bin`` (``scripts/test.sh`` installs it when run as root).  When
``ogrinfo`` is missing its tests skip, naming it; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
SERVER_START_DEADLINE_S = 180  # the first demo server builds the demo, then computes the analysis
LOCAL = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}  # never through a proxy


def _unavailable(reason: str):
    """Skip, naming what is missing; in CI a missing client is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the client tests must run in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _no_proxy_for_localhost():
    saved = {k: os.environ.get(k) for k in LOCAL}
    os.environ.update(LOCAL)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def gdal_tools() -> dict[str, str]:
    """Paths of ogrinfo and ogr2ogr (Debian's gdal-bin)."""
    tools = {name: shutil.which(name) for name in ("ogrinfo", "ogr2ogr")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        _unavailable(f"{' and '.join(missing)} (GDAL's command-line tools) not installed: apt-get install gdal-bin "
                     "(scripts/test.sh does so when run as root)")
    return tools


def run_gdal(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, **LOCAL, "GDAL_HTTP_TIMEOUT": "60"}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, check=False)


# --- the server -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Server:
    base: str  # http://127.0.0.1:PORT
    data_dir: Path
    token: str | None = None  # an editor's API token, where the fixture made one

    @property
    def api(self) -> str:
        return self.base + "/api"

    def get(self, path: str, **kwargs) -> requests.Response:
        session = requests.Session()
        session.trust_env = False
        return session.get(self.base + path, timeout=60, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data_dir: Path, log_path: Path, *, demo: bool, token: str | None = None):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}  # no stray settings
    env.update(GRIDMAP_BASEMAP="none", GRIDMAP_WORKERS="1", GRIDMAP_DEMO="1" if demo else "0")
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--data-dir", str(data_dir)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_healthy(proc, f"{base}/healthz", log_path)
        yield Server(base, data_dir, token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _wait_until_healthy(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    session = requests.Session()
    session.trust_env = False
    deadline = time.monotonic() + SERVER_START_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if session.get(url, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        try:  # waits for the process to exit, at most 0.1 s: the next poll
            code = proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"python -m server exited with {code} before answering:\n{_tail(log_path)}", pytrace=False)
    pytest.fail(f"{url} did not answer within {SERVER_START_DEADLINE_S} s:\n{_tail(log_path)}", pytrace=False)


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> Path:
    """Empty at first: the first demo server fills it (GRIDMAP_DEMO=1); later ones reuse it."""
    return tmp_path_factory.mktemp("demo-data")


@pytest.fixture(scope="module")
def demo_api(demo_data_dir, tmp_path_factory):
    yield from _serve(demo_data_dir, tmp_path_factory.mktemp("logs") / "demo-server.log", demo=True)


def write_small(data_dir: Path) -> str:
    """Six grids (two versions), two centres, one district; returns an editor's API token."""
    import geopandas as gpd
    from shapely import box

    from geodata.store import FileStore
    from geodata.validate import validate
    from server.users import UserStore
    from tests import factories

    store = FileStore(data_dir)
    district = gpd.GeoDataFrame({"adcode": ["330203"], "name": ["海曙区"], "name_en": ["Haishu"]},
                                geometry=[box(121.49, 29.79, 121.54, 29.83)], crs="EPSG:4326")
    layers = [("grids", factories.six_grids()), ("grids", factories.six_grids().iloc[:5]),
              ("centers", factories.centers([factories.center_row("c1", "community"),
                                             factories.center_row("d1", "district")])),
              ("districts", district)]
    for layer, gdf in layers:
        report = validate(gdf, layer)
        assert report.ok, report.errors
        store.write(layer, report.data, author="client-tests")
    return UserStore(data_dir).add("editor", "editor", None)[1]


@pytest.fixture(scope="module")
def small_api(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("small-data")
    token = write_small(data_dir)
    yield from _serve(data_dir, tmp_path_factory.mktemp("logs") / "small-server.log", demo=False, token=token)
