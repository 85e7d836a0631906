"""Browser tests: Debian's Chromium, driven by Playwright (sync API), against the real server.

Every test here talks to ``python -m server`` over real HTTP on 127.0.0.1, started
on one of two data directories:

- ``demo_server``: the Ningbo demo (8,500 grids, 2,500 centres), one server per module;
  the data directory is built once per session by the first server (``GRIDMAP_DEMO=1``).
- ``handmade_server``: six hand-made grids and a few centres whose names are XSS payloads.

The browser is ``/usr/bin/chromium`` from apt (never one downloaded by ``playwright
install``).  When it is missing the tests skip, naming the browser; with ``CI=true``
they fail instead (``scripts/test.sh`` installs it when run as root).

Each test gets a fresh browser context (``tab``) that records console errors, page
errors and every request URL; requests to anywhere but 127.0.0.1 are aborted (and
still recorded), so a page that reaches out is caught without any traffic leaving.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.live import live_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
]
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
TIMEOUT_MS = 30_000  # Playwright's default wait in these tests
READY = "body[data-gridmap-ready]"

# Names that would run script if any page put them into HTML unescaped.
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = '"><script>window.__xss=2</script>'
XSS_CLOSE = "</script><svg onload=\"window.__xss=3\">"
XSS_NAMES = (XSS_IMG, XSS_SCRIPT, XSS_CLOSE)


def _unavailable(reason: str):
    """Skip, naming what is missing; in CI a missing browser is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI)", pytrace=False)
    pytest.skip(reason)


# --- the browser ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def playwright_driver():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed: pip install -r requirements-dev.txt")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium "
                     "(scripts/test.sh does so when run as root)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver):
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@dataclass
class Tab:
    """A page in a fresh context, and what it did."""

    page: object  # playwright.sync_api.Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def _local(url: str) -> bool:
    return url.startswith(("http://127.0.0.1:", "data:", "blob:"))


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN",
                                  service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    # nothing leaves 127.0.0.1: other requests are recorded (below), then aborted here
    context.route(lambda url: not _local(url), lambda route: route.abort("blockedbyclient"))
    page = context.new_page()
    recorded = Tab(page)
    page.on("console", lambda msg: msg.type == "error" and recorded.console_errors.append(
        f"{msg.text} ({msg.location.get('url')}:{msg.location.get('lineNumber')})"))
    page.on("pageerror", lambda error: recorded.page_errors.append(str(error)))
    page.on("request", lambda request: recorded.requests.append(request.url))
    yield recorded
    context.close()


# --- the server -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Server:
    base: str  # http://127.0.0.1:PORT
    data_dir: Path

    def url(self, path: str) -> str:
        return self.base + path


def _serve(data_dir: Path, log_path: Path, *, demo: bool):
    """Start ``python -m server`` on ``data_dir``, wait until /healthz answers, stop it afterwards."""
    with live_server(data_dir, log_path, demo=demo) as base:
        yield Server(base, data_dir)


def _serve_with(data_dir: Path, log_path: Path, **settings):
    """As ``_serve``, on a data directory already filled, with more GRIDMAP_* settings."""
    with live_server(data_dir, log_path, demo=False, **settings) as base:
        yield Server(base, data_dir)


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> Path:
    """Empty at first: the first demo server fills it (GRIDMAP_DEMO=1); later ones reuse it."""
    return tmp_path_factory.mktemp("demo-data")


@pytest.fixture(scope="module")
def demo_server(demo_data_dir, tmp_path_factory):
    yield from _serve(demo_data_dir, tmp_path_factory.mktemp("logs") / "demo-server.log", demo=True)


def write_handmade(data_dir: Path) -> None:
    """Six 0.01° grids (tests/factories.py), three named with XSS payloads; centres likewise."""
    from geodata.store import open_store
    from geodata.validate import validate
    from shapely import Point
    from tests import factories

    grids = factories.six_grids()
    grids.loc[0, "name"] = XSS_IMG
    grids.loc[1, "name"] = XSS_SCRIPT
    grids.loc[2, "name"] = XSS_CLOSE
    grids.loc[3, "community"] = XSS_IMG  # another field the tooltip shows
    x0, y0 = factories.X0, factories.Y0
    centers = factories.centers(
        [factories.center_row("c1", "community", name=XSS_IMG),
         factories.center_row("c2", "street", name=XSS_SCRIPT)],
        points=[Point(x0 + 0.009, y0 + 0.009), Point(x0 + 0.019, y0 + 0.009)])  # corners, off the grids' middles
    store = open_store(data_dir)
    for layer, gdf in (("grids", grids), ("centers", centers)):
        report = validate(gdf, layer)
        assert report.ok, report.errors
        store.write(layer, report.data, author="browser-tests")


@pytest.fixture(scope="module")
def handmade_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("handmade-data")
    write_handmade(data_dir)
    yield from _serve(data_dir, tmp_path_factory.mktemp("logs") / "handmade-server.log", demo=False)


# --- helpers for the tests --------------------------------------------------------------------

def goto_ready(tab: Tab, url: str, timeout_ms: int = 90_000) -> None:
    """Open ``url`` and wait until every layer shown at start has loaded."""
    tab.page.goto(url)
    tab.page.wait_for_selector(READY, state="attached", timeout=timeout_ms)


# --- the map's vector tiles: features are found where they are, as a pointer finds them -----------

def grid_where(server: Server, **match) -> dict:
    """The grid (a GeoJSON feature from the API) whose properties have ``match``, with ``point``: a
    [lat, lng] inside it."""
    import requests
    import shapely.geometry

    found = requests.get(server.url("/api/collections/coverage/items"), params={"limit": 10_000, **match},
                         timeout=60).json()["features"]  # filtered by the API too: a province has 85,000
    feature = next(f for f in found if all(f["properties"].get(k) == v for k, v in match.items()))
    inside = shapely.geometry.shape(feature["geometry"]).representative_point()
    return {**feature, "point": [inside.y, inside.x]}


def pointer_at(tab: Tab, latlng, zoom: int = 15, layer: str | None = None) -> tuple[float, float]:
    """Centre the map on ``latlng`` at ``zoom``, wait until a tile feature is under it (of ``layer``,
    when named), and give its place on the page for page.mouse."""
    page = tab.page
    page.evaluate("([lat, lng, zoom]) => window.gridmap.map.setView([lat, lng], zoom, {animate: false})",
                  [*latlng, zoom])
    page.wait_for_function("""([lat, lng, layer]) => {
      const hit = window.gridmap.featureAt(window.gridmap.map, L.latLng(lat, lng));
      return hit && (!layer || hit.entry.opts.name === layer);
    }""", arg=[*latlng, layer])
    return tuple(page.evaluate("""([lat, lng]) => {
      const map = window.gridmap.map, p = map.latLngToContainerPoint([lat, lng]);
      const box = map.getContainer().getBoundingClientRect();
      return [box.left + p.x, box.top + p.y];
    }""", list(latlng)))


def hover_text(tab: Tab, xy) -> str:
    """The tooltip's text once the pointer rests at ``xy``."""
    tab.page.mouse.move(xy[0] + 1, xy[1] + 1)
    tab.page.mouse.move(*xy)
    tooltip = tab.page.locator(".leaflet-tooltip")
    tooltip.wait_for(state="visible")
    return tooltip.inner_text()


def click_popup(tab: Tab, xy, key: str) -> object:
    """Click at ``xy`` and wait for the popup of the feature ``key`` (fetched from the API): its content."""
    tab.page.mouse.click(*xy)
    content = tab.page.locator(f'.leaflet-popup-content .gm-fields[data-id="{key}"]')
    content.wait_for(state="visible")
    return content
