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
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.live import live_server

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
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


def _serve(data_dir: Path, log_path: Path, *, demo: bool, token: str | None = None, **settings):
    """Start ``python -m server`` on ``data_dir``, wait until /healthz answers, stop it afterwards."""
    with live_server(data_dir, log_path, demo=demo, **settings) as base:
        yield Server(base, data_dir, token)


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

    from geodata.store import open_store
    from geodata.validate import validate
    from server.users import UserStore
    from tests import factories

    store = open_store(data_dir)
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
    # schemathesis sends requests back to back, each edit and recommendation a job: on a loaded machine a queue
    # of 4 fills and the next would (rightly) be a 503 "busy", which is not what the tests look for
    yield from _serve(data_dir, tmp_path_factory.mktemp("logs") / "small-server.log", demo=False, token=token,
                      JOB_QUEUE=32)


def pytest_collection_modifyitems(items):
    """schemathesis names each API operation's test (``test_reads[GET /collections]``) but gives them one node
    id; pytest-xdist schedules tests by node id, so without their names it would run one of each."""
    for item in items:
        if type(item).__name__ == "SchemathesisFunction" and "[" not in item.nodeid:
            item._id = item.parent.id.child(item.name)  # pytest 9 (pinned): a node's id is its parent's and its name
